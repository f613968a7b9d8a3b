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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backend.datasets.columns import columns_from_mapping
from backend.datasets.errors import (
    MAX_REPORTED_PROBLEMS,
    DatasetValidationError,
    Problem,
)
from backend.datasets.formats import (
    ACCEPTED_FORMATS_TEXT,
    DEFAULT_COLUMNS,
    FORMATS,
    PLACEHOLDER,
    Columns,
    Messages,
    convert_row,
    detect_format,
    json_type,
    map_row_text,
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
    """How to read the records: ``format`` (one of formats.FORMATS) None = detect from the first record;
    ``columns`` renames fields (LLaMA-Factory entries, an upload's mapping); ``dedup`` drops rows identical
    (after conversion) to an earlier one; ``text_split`` cuts a .txt file into documents at blank lines
    ("blocks", uploads) or at every line ("lines", LLaMA-Factory's reading of .txt files); ``skip_invalid``
    leaves out the records that have problems (each listed as a warning with its line or record number)
    instead of refusing the file."""

    format: str | None = None
    columns: Columns = DEFAULT_COLUMNS
    dedup: bool = False
    skip_invalid: bool = False
    text_split: str = "blocks"
    mapping: Mapping[str, Any] = field(default_factory=dict)  # what was asked for, stored with the dataset

    @classmethod
    def from_mapping(cls, format: str | None = None, columns: Mapping | None = None, tags: Mapping | None = None,
                     dedup: bool = False) -> NormalizeOptions:
        """An upload's forced ``format`` and LLaMA-Factory style ``columns``/``tags``; DatasetValidationError
        (location "format"/"columns"/"tags") naming an unknown format or key."""
        format = (format or "").strip() or None
        if format is not None and format not in FORMATS:
            message = f"unknown format '{format}'. Use one of: {', '.join(FORMATS)} (or leave it empty to detect)."
            raise DatasetValidationError(f"format: {message}", [{"location": "format", "field": None,
                                                                 "message": message}], 1)
        mapped = columns_from_mapping(columns, tags, formatting=format)
        mapping = {k: v for k, v in (("format", format), ("columns", dict(columns or {})),
                                     ("tags", dict(tags or {}))) if v}
        return cls(format=format, columns=mapped, dedup=dedup, mapping=mapping)


DEFAULT_OPTIONS = NormalizeOptions()


def normalize_file(src: Path, kind: str, filename: str, dest: Path, transform: Transform | None = None,
                   options: NormalizeOptions = DEFAULT_OPTIONS) -> NormalizeReport:
    """Read ``src`` (a ``kind`` file, see readers.file_type), validate it and write normalized JSONL to ``dest``.

    ``transform`` is applied to each row's texts after validation (built-ins fill placeholders).
    Raises DatasetValidationError if any record is unusable; ``dest`` may then hold a partial file.
    """
    errors, warnings = ProblemLog(), ProblemLog()
    if kind == "txt" and options.format not in (None, "text"):
        raise DatasetValidationError.from_problems(filename, [Problem(
            "file", f"a .txt file is read as raw text (format 'text'), not as '{options.format}'. Leave the "
                    "format to auto-detect or upload the records as .json/.jsonl/.csv/.parquet.", None)], 1)
    if kind == "txt":
        options = replace(options, format="text", columns=DEFAULT_COLUMNS)
    with open(dest, "w", encoding="utf-8") as out:
        fmt, num_rows, dropped = _normalize_items(iter_raw_records(src, kind, options.text_split), out, errors,
                                                  warnings, transform, options)
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
    if fmt is not None and fmt not in FORMATS:
        errors.add(Problem("file", f"unknown format '{fmt}'. Use one of: {', '.join(FORMATS)}.", "format"))
        return "unknown", 0, 0
    pending: list[RawRecord] = []  # records seen before the format could be detected
    seen: dict[bytes, str] = {}
    keys_seen: set[str] = set()
    placeholder_hits: list[tuple[str, list[str]]] = []  # (location, placeholder names)
    skipped = ProblemLog()  # records left out by skip_invalid
    num_rows = dropped = 0

    def handle(record: RawRecord) -> None:
        nonlocal num_rows, dropped
        if options.columns.explicit and isinstance(record.value, dict):
            keys_seen.update(record.value)
        row, problems = convert_row(record.value, fmt, options.columns)
        if problems and options.skip_invalid:
            field_name, message = problems[0]
            more = f" (and {len(problems) - 1} more problems in it)" if len(problems) > 1 else ""
            skipped.add(Problem(record.location, f"skipped: {message}{more}", field_name or None))
            return
        for field_name, message in problems:
            errors.add(Problem(record.location, message, field_name or None))
        if row is None or errors.count:
            return
        if transform is not None:
            row = map_row_text(row, transform)
        line = json.dumps(row, ensure_ascii=False)
        digest = hashlib.blake2b(line.encode(), digest_size=16).digest()
        if digest in seen and options.dedup:
            dropped += 1
            return
        if digest in seen:
            warnings.add(Problem(record.location, f"duplicates {seen[digest]} (identical after conversion); "
                                                  "duplicates weigh that example more in training."))
        else:
            seen[digest] = record.location
        if found := PLACEHOLDER.findall(line):
            placeholder_hits.append((record.location, found))
        out.write(line + "\n")
        num_rows += 1

    for item in items:
        if isinstance(item, Problem):
            if options.skip_invalid and item.location != "file":  # an unreadable line/record, not the file
                skipped.add(replace(item, message=f"skipped: {item.message}"))
            else:
                errors.add(item)
            continue
        if fmt is None:
            detected = detect_format(item.value, options.columns)
            if detected is None:
                pending.append(item)
                continue
            fmt = detected
            for earlier in pending:
                handle(earlier)
            pending.clear()
        handle(item)

    if fmt is None:
        if pending or not errors.count:
            errors.add(_unknown_format_problem(pending))
        return "unknown", 0, 0
    _report_missing_columns(options.columns, keys_seen, errors)
    _report_skipped(skipped, num_rows, warnings, errors)
    if num_rows == 0 and not errors.count:
        errors.add(Problem("file", "contains no records. Upload a file with at least one record."))
    if placeholder_hits:
        warnings.add(placeholder_warning(placeholder_hits))
    if dropped:
        warnings.add(Problem("file", f"{dropped} exact duplicate row(s) were dropped (dedup=true); the first "
                                     "copy of each was kept."))
    return fmt, num_rows, dropped


def placeholder_warning(hits: list[tuple[str, list[str]]]) -> Problem:
    """One warning for the records holding ``{{placeholder}}`` text, naming the placeholders (LLaMA-Factory's
    identity.json has {{name}} and {{author}}) and where the first is."""
    names = sorted({name for _, found in hits for name in found})
    shown = ", ".join("{{" + name + "}}" for name in names)
    message = (f"{len(hits)} record(s) contain the placeholder(s) {shown} (first at {hits[0][0]}); they will be "
               "trained literally. Replace them before uploading if that is not intended")
    if set(names) <= {"name", "author"}:
        message += " (for LLaMA-Factory's identity.json: the Identity demo on the Datasets page fills them in)"
    return Problem(hits[0][0], message + ".")


def _report_skipped(skipped: ProblemLog, num_rows: int, warnings: ProblemLog, errors: ProblemLog) -> None:
    """skip_invalid: the records left out, first among the warnings under a count; when no record is left,
    they are the file's errors after all."""
    if not skipped.count:
        return
    if num_rows == 0:
        errors.shown[:0] = skipped.shown
        errors.count += skipped.count
        del errors.shown[MAX_REPORTED_PROBLEMS:]
        return
    summary = Problem("file", f"{skipped.count} invalid record(s) skipped (skip invalid rows); the first "
                              f"{len(skipped.shown)} are listed with their line or record number.")
    warnings.shown[:0] = [summary, *skipped.shown]
    warnings.count += 1 + skipped.count
    del warnings.shown[MAX_REPORTED_PROBLEMS:]


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


def _report_missing_columns(columns: Columns, keys_seen: set[str], errors: ProblemLog) -> None:
    """A column the mapping names that no record has is a typo in the mapping: say so first."""
    if not keys_seen:
        return
    missing = [(ours, theirs) for ours, theirs in columns.explicit if theirs not in keys_seen]
    found = ", ".join(sorted(map(str, keys_seen)))
    for ours, theirs in reversed(missing):
        errors.count += 1
        errors.shown.insert(0, Problem("columns", f"the mapping names column '{theirs}' for '{ours}', but no "
                                                  f"record has it. The records' columns are: {found}. Fix the "
                                                  "mapping.", theirs))
        del errors.shown[MAX_REPORTED_PROBLEMS:]
