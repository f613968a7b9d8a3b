"""Read an uploaded file (JSON array, JSONL, CSV, Parquet, plain text) into raw records, one at a time.

``iter_raw_records`` yields a ``RawRecord`` per record or a ``Problem`` where a record (or the whole file)
cannot be read, so a caller can report every broken line at once instead of the first one only. Nothing
here knows about dataset formats (alpaca, sharegpt, ...): that is ``formats.py``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import ijson

from backend.datasets.errors import Problem, UnsupportedFileType
from backend.datasets.json_stream import (
    MAX_DEPTH,
    MAX_RECORD_BYTES,
    RecordTooLarge,
    deepest_field,
    iter_array_elements,
    located_array_problem,
    nesting_problem,
)

FILE_TYPES = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
# Plain text (pre-training documents); not a record file, so not looked for inside zips or built-in folders.
TEXT_FILE_TYPES = {".txt": "txt"}
# Columns that hold a list (turns); CSV can only store them as JSON text.
LIST_COLUMNS = ("messages", "conversations", "history")
# Columns that may hold text or a JSON list/object (preference replies, TRL prompts): parsed when they look like
# JSON, kept as text otherwise.
MAYBE_JSON_COLUMNS = ("chosen", "rejected", "prompt", "completion")

_JSONL_HINT = "Each line of a JSONL file must be one JSON object."
_UTF8_HINT = "Save the file as UTF-8 (most editors: 'Save with encoding' -> UTF-8)."
_TOO_LARGE = (f"is larger than {MAX_RECORD_BYTES // 2**20} MiB, the most one record may be. Split long documents "
              "into several records.")
_TOO_DEEP = (f"nests lists/objects more than {MAX_DEPTH} levels deep, more than any dataset field needs. Flatten it, "
             "or keep it as a JSON string.")


@dataclass(frozen=True)
class RawRecord:
    """One record as found in the file, before any format checks."""

    location: str
    value: Any


RawItem = RawRecord | Problem


def source_filename(filename: str) -> str:
    """The bare file name of an upload (browsers may send a full Windows or POSIX path)."""
    return PureWindowsPath(filename).name.rsplit("/", 1)[-1]


def file_type(filename: str) -> str:
    """'json' | 'jsonl' | 'csv' | 'parquet' | 'txt' from the extension; UnsupportedFileType for anything else."""
    suffix = Path(source_filename(filename)).suffix.lower()
    if suffix in TEXT_FILE_TYPES:
        return TEXT_FILE_TYPES[suffix]
    if suffix not in FILE_TYPES:
        accepted = ", ".join([*FILE_TYPES, *TEXT_FILE_TYPES])
        shown = f"'{suffix}'" if suffix else "no extension"
        raise UnsupportedFileType(
            f"{source_filename(filename) or 'the file'} has {shown}; accepted file types are {accepted}. "
            "Rename or export the file to one of them."
        )
    return FILE_TYPES[suffix]


def iter_raw_records(path: Path, kind: str, text_split: str = "blocks") -> Iterator[RawItem]:
    """Every record of ``path`` read as ``kind`` (see ``file_type``), or a Problem where it is unreadable.

    A .txt file gives one ``{"text": ...}`` record per document: blank-line-separated blocks (``text_split``
    "blocks"; the lines of a block are kept with their line breaks) or every non-empty line ("lines")."""
    if path.stat().st_size == 0:
        yield Problem("file", "the file is empty. Upload a file with at least one record.")
        return
    if kind == "parquet":
        yield from _iter_parquet(path)
        return
    bad_at = first_invalid_utf8(path)
    if bad_at is not None and kind != "jsonl":
        yield _utf8_problem(path, bad_at)
        return
    if kind == "txt":
        yield from _iter_text(path, by_line=text_split == "lines")
    elif kind == "csv":
        yield from _iter_csv(path)
    elif kind == "json" or (bad_at is None and _holds_json_array(path)):
        yield from _iter_json_text(path, kind)
    else:
        yield from _iter_jsonl(path)


def first_invalid_utf8(path: Path, chunk_size: int = 1 << 20) -> int | None:
    """Byte offset of the first byte that is not valid UTF-8, or None if the whole file decodes."""
    offset, carry = 0, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            data = carry + chunk
            try:
                data.decode("utf-8")
                offset, carry = offset + len(data), b""
            except UnicodeDecodeError as err:
                if err.end == len(data) and err.reason == "unexpected end of data":
                    offset, carry = offset + err.start, data[err.start:]  # a character split by the chunk
                else:
                    return offset + err.start
    return offset if carry else None


def _utf8_problem(path: Path, offset: int) -> Problem:
    with open(path, "rb") as fh:
        before = fh.read(offset)
        bad = fh.read(1)
    line = before.count(b"\n") + 1
    return Problem(
        f"line {line}",
        f"byte 0x{bad.hex()} at byte offset {offset} is not valid UTF-8. {_UTF8_HINT}",
    )


def _holds_json_array(path: Path) -> bool:
    """Content sniffing for a .jsonl upload that really is one JSON array (on one line or spread over many)."""
    with open(path, "rb") as fh:
        raw = fh.readline(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return raw.lstrip(b"\xef\xbb\xbf \t").startswith(b"[")  # one huge line: read it as an array, streamed
        first_line = raw.decode("utf-8-sig", errors="replace").strip()
        nothing_after = not fh.read(4096).strip()
    if not first_line.startswith("["):
        return False
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        return True
    return nothing_after


def _capped_lines(fh) -> Iterator[bytes | None]:
    """The lines of a binary file, or None for a line longer than MAX_RECORD_BYTES (skipped, never held whole)."""
    while raw := fh.readline(MAX_RECORD_BYTES + 1):
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield raw


def parse_record(location: str, text: str, hint: str) -> RawItem:
    """One JSON record from ``text``; a Problem for broken JSON or nesting deeper than MAX_DEPTH."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return Problem(location, f"not valid JSON: {err.msg} (column {err.colno}). {hint}")
    except RecursionError:
        field = deepest_field(text)
        return Problem(location, f"{_field_words(field)} {_TOO_DEEP}", field=field or None)
    field = nesting_problem(value)
    if field is not None:
        return Problem(location, f"{_field_words(field)} {_TOO_DEEP}", field=field or None)
    return RawRecord(location, value)


def _field_words(field: str) -> str:
    return f"field '{field}'" if field else "the record"


def _iter_jsonl(path: Path) -> Iterator[RawItem]:
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(_capped_lines(fh), start=1):
            location = f"line {number}"
            if raw is None:
                yield Problem(location, f"the line {_TOO_LARGE}")
                continue
            start, offset = offset, offset + len(raw)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield Problem(location, f"byte offset {start + err.start} is not valid UTF-8. {_UTF8_HINT}")
                continue
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            yield parse_record(location, text, _JSONL_HINT)


def _iter_json_text(path: Path, kind: str) -> Iterator[RawItem]:
    """A JSON array (streamed), or one object; a .json file holding JSON Lines is read as JSONL."""
    with open(path, "rb") as fh:
        bom = fh.read(3) == b"\xef\xbb\xbf"
        fh.seek(3 if bom else 0)
        first = _first_char(fh)
    if first == "[":
        yield from _iter_json_array_stream(path, 3 if bom else 0)
        return
    if path.stat().st_size > MAX_RECORD_BYTES:  # too big to be one record: records one per line, or nothing
        yield from _iter_jsonl(path)
        return
    text = path.read_text(encoding="utf-8-sig")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":
            yield from _iter_jsonl(path)  # several objects one after another: JSON Lines in a .json file
            return
        yield Problem(
            f"line {err.lineno}",
            f"not valid JSON: {err.msg} (column {err.colno}). A .{kind} file must hold a JSON array of "
            f"records or one JSON object per line.",
        )
        return
    except RecursionError:
        yield parse_record("record 1", text, "")
        return
    yield parse_record("record 1", text, "") if nesting_problem(value) is not None else RawRecord("record 1", value)


def _first_char(fh) -> str:
    while chunk := fh.read(4096):
        stripped = chunk.lstrip(b" \t\r\n")
        if stripped:
            return chr(stripped[0])
    return ""


def _iter_json_array_stream(path: Path, start: int) -> Iterator[RawItem]:
    """Each element of the file's top-level array, one at a time (backend/datasets/json_stream.py)."""
    number = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        try:
            for number, value, too_deep in iter_array_elements(fh):
                location = f"record {number}"
                if too_deep is not None:
                    yield Problem(location, f"{_field_words(too_deep)} {_TOO_DEEP}", field=too_deep or None)
                else:
                    yield RawRecord(location, value)
        except RecordTooLarge:
            yield Problem(f"record {number + 1}", f"the record {_TOO_LARGE} Records after it were not read.")
        except ijson.JSONError as err:
            yield located_array_problem(path, number + 1, err)


def _capped_text_lines(fh) -> Iterator[str]:
    """The lines of a text file; RecordTooLarge at the first longer than MAX_RECORD_BYTES characters."""
    while line := fh.readline(MAX_RECORD_BYTES + 1):
        if len(line) > MAX_RECORD_BYTES and not line.endswith("\n"):
            raise RecordTooLarge()
        yield line


def _iter_text(path: Path, by_line: bool) -> Iterator[RawItem]:
    block: list[str] = []
    start, size, number = 0, 0, 0
    with open(path, encoding="utf-8-sig", newline=None) as fh:
        try:
            for number, line in enumerate(_capped_text_lines(fh), start=1):
                line = line.rstrip("\n")
                if by_line:
                    if line.strip():
                        yield RawRecord(f"line {number}", {"text": line})
                    continue
                if line.strip():
                    start, size = start or number, size + len(line)
                    if size > MAX_RECORD_BYTES:
                        raise RecordTooLarge()
                    block.append(line)
                elif block:
                    yield RawRecord(f"line {start}", {"text": "\n".join(block)})
                    block, start, size = [], 0, 0
        except RecordTooLarge:
            where = start if block else number + 1
            yield Problem(f"line {where}", f"the document {_TOO_LARGE} Text after it was not read.")
            return
    if block:
        yield RawRecord(f"line {start}", {"text": "\n".join(block)})


def _iter_csv(path: Path) -> Iterator[RawItem]:
    csv.field_size_limit(MAX_RECORD_BYTES)  # long answers exceed the 128 KiB default; a bomb must not pass
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(_capped_text_lines(fh))
        try:
            for number, row in enumerate(reader, start=1):
                yield _csv_record(number, reader.line_num, row)
        except csv.Error as err:
            yield Problem(f"line {reader.line_num}", f"not valid CSV: {err}. Check the quoting on this line.")
        except RecordTooLarge:
            yield Problem(f"line {reader.line_num + 1}", f"the line {_TOO_LARGE} Lines after it were not read.")


def _csv_record(number: int, line: int, row: dict) -> RawItem:
    location = f"record {number}"
    if None in row:
        return Problem(location, f"(CSV line {line}) has more cells than the header has columns. "
                                 "Quote cells that contain commas.")
    record: dict[str, Any] = {}
    for key, cell in row.items():
        if cell is None:
            continue
        if key in LIST_COLUMNS:
            if not cell.strip():
                continue
            try:
                cell = json.loads(cell)
            except json.JSONDecodeError as err:
                return Problem(location, f"(CSV line {line}) column '{key}' must hold a JSON list: {err.msg} "
                                         f"(column {err.colno}).", field=key)
            except RecursionError:
                return Problem(location, f"(CSV line {line}) column '{key}' {_TOO_DEEP}", field=key)
        elif key in MAYBE_JSON_COLUMNS and cell.lstrip()[:1] in ("[", "{"):
            try:
                cell = json.loads(cell)
            except json.JSONDecodeError:
                pass  # text that starts with a bracket
            except RecursionError:
                return Problem(location, f"(CSV line {line}) column '{key}' {_TOO_DEEP}", field=key)
        record[key] = cell
    field = nesting_problem(record)
    if field is not None:
        return Problem(location, f"(CSV line {line}) column '{field}' {_TOO_DEEP}", field=field)
    return RawRecord(location, record)


def _iter_parquet(path: Path) -> Iterator[RawItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).total_byte_size  # uncompressed: what reading it costs
            rows = max(parquet.metadata.row_group(group).num_rows, 1)
            if size / rows > MAX_RECORD_BYTES or size > 64 * MAX_RECORD_BYTES:
                yield Problem("file", f"row group {group} unpacks to {size:,} bytes ({rows:,} rows); a record "
                                      f"{_TOO_LARGE} Write the file with smaller row groups (pandas: "
                                      "`df.to_parquet(path, row_group_size=1000)`).")
                return
        number = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                field = nesting_problem(row)
                yield (RawRecord(f"record {number}", row) if field is None else
                       Problem(f"record {number}", f"{_field_words(field)} {_TOO_DEEP}", field=field or None))
    except (pa.ArrowException, OSError) as err:
        yield Problem("file", f"not a readable Parquet file: {err}. Export it again with pandas "
                              "`df.to_parquet(path)` or upload JSON Lines instead.")
