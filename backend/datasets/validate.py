"""Validate an uploaded file record by record and write its normalized JSONL.

``normalize_file`` reads every record, collects every problem (not only the first), and either writes the
normalized dataset and returns a ``NormalizeReport`` (with warnings such as duplicates) or raises
``DatasetValidationError`` carrying the first 20 problems and the total count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from backend.datasets.errors import MAX_REPORTED_PROBLEMS, DatasetValidationError, Problem
from backend.datasets.formats import (
    ACCEPTED_FORMATS_TEXT,
    DEFAULT_COLUMNS,
    PLACEHOLDER,
    Columns,
    Messages,
    convert_record,
    detect_format,
    json_type,
)
from backend.datasets.readers import RawItem, RawRecord, iter_raw_records

Transform = Callable[[Messages], Messages]


@dataclass
class ProblemLog:
    """Keeps the first 20 problems and counts all of them."""

    shown: list[Problem] = field(default_factory=list)
    count: int = 0

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED_PROBLEMS:
            self.shown.append(problem)


@dataclass
class NormalizeReport:
    format: str
    num_rows: int
    warnings: list[Problem]
    warning_count: int
    duplicates_dropped: int = 0


@dataclass(frozen=True)
class NormalizeOptions:
    """How to read the records: ``format`` None = detect from the first record; ``columns`` renames fields
    (LLaMA-Factory entries); ``dedup`` drops rows identical (after conversion) to an earlier one."""

    format: str | None = None
    columns: Columns = DEFAULT_COLUMNS
    dedup: bool = False


DEFAULT_OPTIONS = NormalizeOptions()


def normalize_file(src: Path, kind: str, filename: str, dest: Path, transform: Transform | None = None,
                   options: NormalizeOptions = DEFAULT_OPTIONS) -> NormalizeReport:
    """Read ``src`` (a ``kind`` file, see readers.file_type), validate it and write normalized JSONL to ``dest``.

    ``transform`` is applied to each record's messages after validation (built-ins fill placeholders).
    Raises DatasetValidationError if any record is unusable; ``dest`` may then hold a partial file.
    """
    errors, warnings = ProblemLog(), ProblemLog()
    with open(dest, "w", encoding="utf-8") as out:
        fmt, num_rows, dropped = _normalize_items(iter_raw_records(src, kind), out, errors, warnings, transform,
                                                  options)
        out.flush()
        os.fsync(out.fileno())
    if errors.count:
        raise DatasetValidationError.from_problems(filename, errors.shown, errors.count)
    return NormalizeReport(fmt, num_rows, warnings.shown, warnings.count, dropped)


def normalize_records(records: Iterable[RawItem], transform: Transform | None = None) -> tuple[str, list[dict]]:
    """In-memory variant for callers and tests: (format, normalized rows) or DatasetValidationError."""
    errors, out = ProblemLog(), io.StringIO()
    fmt, _, _ = _normalize_items(records, out, errors, ProblemLog(), transform, DEFAULT_OPTIONS)
    if errors.count:
        raise DatasetValidationError.from_problems("the data", errors.shown, errors.count)
    return fmt, [json.loads(line) for line in out.getvalue().splitlines()]


def _normalize_items(items: Iterable[RawItem], out, errors: ProblemLog, warnings: ProblemLog,
                     transform: Transform | None, options: NormalizeOptions) -> tuple[str, int, int]:
    fmt: str | None = options.format
    pending: list[RawRecord] = []  # records seen before the format could be detected
    seen: dict[bytes, str] = {}
    placeholder_hits: list[str] = []
    num_rows = dropped = 0

    def handle(record: RawRecord) -> None:
        nonlocal num_rows, dropped
        messages, problems = convert_record(record.value, fmt, options.columns)
        for field_name, message in problems:
            errors.add(Problem(record.location, message, field_name or None))
        if messages is None or errors.count:
            return
        if transform is not None:
            messages = transform(messages)
        line = json.dumps({"messages": messages}, ensure_ascii=False)
        digest = hashlib.blake2b(line.encode(), digest_size=16).digest()
        if digest in seen and options.dedup:
            dropped += 1
            return
        if digest in seen:
            warnings.add(Problem(record.location, f"duplicates {seen[digest]} (identical after conversion); "
                                                  "duplicates weigh that example more in training."))
        else:
            seen[digest] = record.location
        if PLACEHOLDER.search(line):
            placeholder_hits.append(record.location)
        out.write(line + "\n")
        num_rows += 1

    for item in items:
        if isinstance(item, Problem):
            errors.add(item)
            continue
        if fmt is None:
            detected = detect_format(item.value)
            if detected is None:
                pending.append(item)
                continue
            fmt = detected
            if fmt == "preference":
                errors.add(_preference_problem(item))
                return fmt, 0, 0
            for earlier in pending:
                handle(earlier)
            pending.clear()
        handle(item)

    if fmt is None:
        if pending or not errors.count:
            errors.add(_unknown_format_problem(pending))
        return "unknown", 0, 0
    if num_rows == 0 and not errors.count:
        errors.add(Problem("file", "contains no records. Upload a file with at least one record."))
    if placeholder_hits:
        warnings.add(Problem(placeholder_hits[0], f"{len(placeholder_hits)} record(s) contain {{{{placeholder}}}} "
                                                  "text such as {{name}}; it will be trained literally. Replace it "
                                                  "before uploading if that is not intended."))
    if dropped:
        warnings.add(Problem("file", f"{dropped} exact duplicate row(s) were dropped (dedup=true); the first "
                                     "copy of each was kept."))
    return fmt, num_rows, dropped


def _unknown_format_problem(records: list[RawRecord]) -> Problem:
    if not records:
        return Problem("file", "contains no records. Upload a file with at least one record.")
    first = records[0]
    if isinstance(first.value, dict):
        keys = ", ".join(sorted(map(str, first.value))) or "none"
        found = f"has keys [{keys}]"
    else:
        found = f"is a JSON {json_type(first.value)}, not an object"
    return Problem(first.location, f"unknown dataset format: the record {found}. Accepted formats: "
                                   f"{ACCEPTED_FORMATS_TEXT}. Rename your columns to one of these.")


def _preference_problem(record: RawRecord) -> Problem:
    return Problem(record.location, "this looks like a preference (DPO) dataset: records have 'chosen' and "
                                    "'rejected'. Tunesmith fine-tunes on demonstrations; keep the conversation and "
                                    "its chosen answer as one {\"messages\": [...]} record and drop 'rejected'.")
