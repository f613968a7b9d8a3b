"""The dataset registry: normalized files under ``datasets/<id>/`` indexed by the ``datasets`` SQLite table.

An upload is streamed to a temp folder inside ``datasets_dir`` (see uploads.py), validated and normalized there
(``stage``), moved into place with one rename, and only then inserted into SQLite (``publish``: several
datasets of one zip in one transaction). Any failure on the way removes what was written,
so a rejected upload leaves no folder, no file and no row. Every method opens its own short-lived SQLite
connection, so one registry can be shared by the threads of the web server.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from backend.datasets import uploads
from backend.datasets.errors import DatasetNameTaken, DatasetNotFound, DatasetReadOnly
from backend.datasets.formats import fill_placeholders
from backend.datasets.names import ID_PATTERN, check_dataset_name
from backend.datasets.readers import FILE_TYPES, file_type
from backend.datasets.record import DatasetRecord
from backend.datasets.validate import DEFAULT_OPTIONS, NormalizeOptions, Transform, normalize_file
from backend.fsio import atomic_write_json
from backend.settings import Settings

log = logging.getLogger(__name__)

DATA_FILE = "data.jsonl"
META_FILE = "meta.json"
DEFAULT_PLACEHOLDERS = {"name": "Tunesmith", "author": "the Tunesmith team"}
LEFTOVER_AGE_S = 3600
_COPY_CHUNK = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    format TEXT NOT NULL,
    num_rows INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    source_filename TEXT NOT NULL,
    created_at TEXT NOT NULL,
    builtin INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    warning_count INTEGER NOT NULL DEFAULT 0,
    mapping TEXT NOT NULL DEFAULT '{}'
)
"""
_COLUMNS = ("id", "name", "format", "num_rows", "size_bytes", "sha256", "source_filename", "created_at",
            "builtin", "warnings", "warning_count", "mapping")


def new_dataset_id() -> str:
    return "ds_" + secrets.token_hex(5)


class DatasetRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasets_dir = settings.datasets_dir
        if not settings.read_only_reason:  # a read-only home is served as it is (backend/home_access.py)
            self.datasets_dir.mkdir(parents=True, exist_ok=True)
        self._db_path = settings.db_path
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            if "mapping" not in {row[1] for row in conn.execute("PRAGMA table_info(datasets)")}:
                conn.execute("ALTER TABLE datasets ADD COLUMN mapping TEXT NOT NULL DEFAULT '{}'")  # older homes
        if not settings.read_only_reason:
            self._sweep_leftovers()

    # ---- queries -------------------------------------------------------------------------------------
    def list(self) -> list[DatasetRecord]:
        """All datasets, built-ins first, then newest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM datasets ORDER BY builtin DESC, created_at DESC, name").fetchall()
        return [self._record(row) for row in rows]

    def get(self, id_or_name: str) -> DatasetRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM datasets WHERE id = ?", (id_or_name,)).fetchone()
            if row is None:
                row = conn.execute("SELECT * FROM datasets WHERE name = ?", (id_or_name.strip(),)).fetchone()
        return self._record(row) if row else None

    def require(self, id_or_name: str) -> DatasetRecord:
        record = self.get(id_or_name)
        if record is None:
            raise DatasetNotFound(f"no dataset with id or name '{id_or_name}'. List them with GET /api/v1/datasets.")
        return record

    def preview(self, id: str, limit: int = 5) -> list[dict]:
        """The first ``limit`` normalized rows."""
        record, rows = self.require(id), []
        if not record.path.is_file():
            raise DatasetNotFound(f"dataset '{record.name}' is registered but its file {record.path} is missing. "
                                  "Delete the dataset and upload it again.")
        with open(record.path, encoding="utf-8") as fh:
            for line in fh:
                if len(rows) >= limit:
                    break
                rows.append(json.loads(line))
        return rows

    # ---- changes -------------------------------------------------------------------------------------
    def create_from_upload(self, filename: str, fileobj: BinaryIO, name: str | None = None,
                           dedup: bool = False) -> DatasetRecord:
        """``create_all_from_upload`` for one file (or a zip of one): its record. For a zip of several data
        files, all are registered and the first is returned."""
        return self.create_all_from_upload(filename, fileobj, name, NormalizeOptions(dedup=dedup))[0]

    def create_all_from_upload(self, filename: str, fileobj: BinaryIO, name: str | None = None,
                               options: NormalizeOptions = DEFAULT_OPTIONS) -> builtins.list[DatasetRecord]:
        """Stream an upload to disk, validate, normalize and register it; a zip registers each of its data
        files, all or none (see ``uploads.register_upload``)."""
        return uploads.register_upload(self, filename, fileobj, name, options)

    def create_from_path(self, src: Path, original: str, name: str | None = None,
                         options: NormalizeOptions = DEFAULT_OPTIONS, *, work: Path | None = None) -> DatasetRecord:
        """Register a file already on the server (read in place, never moved). ``name`` None = a free name
        derived from ``original``; a given name must be free."""
        kind = file_type(original)
        name = check_dataset_name(name) if name is not None else self.free_name(Path(original).stem)
        self.check_name_free(name)
        if work is not None:
            return self._ingest(work, src, kind, original, name, options=options)
        with self.work_dir(".upload-") as fresh:
            return self._ingest(fresh, src, kind, original, name, options=options)

    def register_builtin(self, folder: Path, placeholders: Mapping[str, str] | None = None) -> list[DatasetRecord]:
        """Register every dataset file in ``folder`` as a built-in named after its stem.

        Idempotent: a built-in whose name and normalized content (sha256) are unchanged is kept as is; one
        whose content changed is replaced. ``{{name}}``/``{{author}}`` placeholders are filled from
        ``placeholders`` (defaults: DEFAULT_PLACEHOLDERS). A name held by a user dataset is skipped.
        """
        values = {**DEFAULT_PLACEHOLDERS, **(placeholders or {})}
        records = []
        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() not in FILE_TYPES or path.name.startswith("."):
                continue
            record = self._register_one_builtin(path, values)
            if record is not None:
                records.append(record)
        return records

    def create_filled_copy(self, src: Path, placeholders: Mapping[str, str], name: str) -> DatasetRecord:
        """Register a user (editable, non-built-in) copy of a placeholder file such as the built-in identity
        demo, with ``{{name}}``/``{{author}}`` filled from ``placeholders`` (missing keys: DEFAULT_PLACEHOLDERS).
        ``name`` must be valid and free."""
        values = {**DEFAULT_PLACEHOLDERS, **placeholders}
        name = check_dataset_name(name)
        self.check_name_free(name)
        with self.work_dir(".upload-") as work:
            return self._ingest(work, src, file_type(src.name), src.name, name,
                                transform=lambda messages: fill_placeholders(messages, values))

    def rename(self, id: str, new_name: str) -> DatasetRecord:
        record = self.require(id)
        if record.builtin:
            raise DatasetReadOnly(f"'{record.name}' is a built-in dataset and cannot be renamed. Upload a copy "
                                  "under the name you want instead.")
        new_name = check_dataset_name(new_name)
        try:
            with self._connect() as conn:
                conn.execute("UPDATE datasets SET name = ? WHERE id = ?", (new_name, record.id))
        except sqlite3.IntegrityError:
            raise self._name_taken(new_name) from None
        renamed = record.model_copy(update={"name": new_name})
        atomic_write_json(renamed.path.parent / META_FILE, _meta(renamed))
        return renamed

    def delete(self, id: str) -> None:
        """Remove the row and the folder. Built-ins are read-only (they come back at every start)."""
        record = self.require(id)
        if record.builtin:
            raise DatasetReadOnly(f"'{record.name}' is a built-in dataset and cannot be deleted.")
        folder = self.datasets_dir / record.id
        trash = self.datasets_dir / f".trash-{record.id}-{secrets.token_hex(3)}"
        if folder.exists():
            os.replace(folder, trash)
        try:
            with self._connect() as conn:
                conn.execute("DELETE FROM datasets WHERE id = ?", (record.id,))
        except BaseException:
            if trash.exists():
                os.replace(trash, folder)
            raise
        shutil.rmtree(trash, ignore_errors=True)

    # ---- internals -----------------------------------------------------------------------------------
    def _ingest(self, work: Path, src: Path, kind: str, original: str, name: str, *, builtin: bool = False,
                transform: Transform | None = None, replaces: DatasetRecord | None = None,
                options: NormalizeOptions = DEFAULT_OPTIONS) -> DatasetRecord:
        staged = self.stage(work / "dataset", src, kind, original, name, builtin=builtin, transform=transform,
                             options=options)
        if replaces is not None and replaces.sha256 == staged[1].sha256:
            return replaces
        return self.publish([staged], replaces)[0]

    def stage(self, staging: Path, src: Path, kind: str, original: str, name: str, *, builtin: bool = False,
              transform: Transform | None = None,
              options: NormalizeOptions = DEFAULT_OPTIONS) -> tuple[Path, DatasetRecord]:
        """Validate and normalize ``src`` into the new folder ``staging``: (that folder, its future record)."""
        staging.mkdir()
        report = normalize_file(src, kind, original, staging / DATA_FILE, transform, options)
        sha256, size = _hash_file(staging / DATA_FILE)
        dataset_id = new_dataset_id()
        record = DatasetRecord(
            id=dataset_id, name=name, format=report.format, num_rows=report.num_rows, size_bytes=size,
            sha256=sha256, source_filename=original, created_at=datetime.now(timezone.utc),
            path=self.datasets_dir / dataset_id / DATA_FILE, builtin=builtin,
            warnings=[w.as_dict() for w in report.warnings], warning_count=report.warning_count,
            mapping=dict(options.mapping), duplicates_dropped=report.duplicates_dropped,
        )
        atomic_write_json(staging / META_FILE, _meta(record))
        return staging, record

    def publish(self, staged: list[tuple[Path, DatasetRecord]],
                replaces: DatasetRecord | None = None) -> list[DatasetRecord]:
        """Move the staged folders into place and insert their rows in one transaction: all or none."""
        records, moved = [record for _, record in staged], []
        try:
            for staging, record in staged:
                os.replace(staging, record.path.parent)
                moved.append(record.path.parent)
            self._insert(records, replaces)
        except BaseException:
            for folder in moved:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if replaces is not None:
            shutil.rmtree(self.datasets_dir / replaces.id, ignore_errors=True)
        return records

    def _register_one_builtin(self, path: Path, values: Mapping[str, str]) -> DatasetRecord | None:
        name = check_dataset_name(path.stem)
        existing = self.get(name)
        if existing is not None and not existing.builtin:
            log.warning("built-in dataset %s skipped: a user dataset is already named '%s'", path.name, name)
            return None
        with self.work_dir(".builtin-") as work:
            return self._ingest(work, path, file_type(path.name), path.name, name, builtin=True,
                                transform=lambda messages: fill_placeholders(messages, values), replaces=existing)

    def _insert(self, records: list[DatasetRecord], replaces: DatasetRecord | None = None) -> None:
        """One transaction: every row of ``records`` is inserted, or none is."""
        placeholders = ", ".join("?" for _ in _COLUMNS)
        record = records[0]
        try:
            with self._connect() as conn:
                if replaces is not None:
                    conn.execute("DELETE FROM datasets WHERE id = ?", (replaces.id,))
                for record in records:
                    row = _meta(record)
                    row["builtin"] = int(record.builtin)
                    row["warnings"] = json.dumps(record.warnings, ensure_ascii=False)
                    row["mapping"] = json.dumps(record.mapping, ensure_ascii=False)
                    conn.execute(f"INSERT INTO datasets ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                                 [row[c] for c in _COLUMNS])
        except sqlite3.IntegrityError:
            raise self._name_taken(record.name) from None

    def check_name_free(self, name: str) -> None:
        if self.get(name) is not None:
            raise self._name_taken(name)

    def _name_taken(self, name: str) -> DatasetNameTaken:
        return DatasetNameTaken(f"a dataset named '{name}' already exists. Choose another name, or delete or "
                                "rename the existing one first.")

    def free_name(self, stem: str, reserved: set[str] | frozenset[str] = frozenset()) -> str:
        """A valid name derived from an uploaded file's stem, with -2, -3, ... appended if it is taken (or,
        lower-cased, in ``reserved``: names already planned for the same upload)."""
        base = re.sub(r"[^\w .-]", "-", stem).strip(" .-")[:58] or "dataset"
        if ID_PATTERN.match(base):
            base = f"dataset-{base}"
        candidate, n = base, 1
        while candidate.lower() in reserved or self.get(candidate) is not None:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def copy_limited(self, fileobj: BinaryIO, dest: Path) -> None:
        uploads.copy_limited(fileobj, dest, self.settings.max_upload_bytes)

    @contextmanager
    def work_dir(self, prefix: str) -> Iterator[Path]:
        work = Path(tempfile.mkdtemp(prefix=prefix, dir=self.datasets_dir))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self._db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def _record(self, row: sqlite3.Row) -> DatasetRecord:
        data = dict(row)
        data["builtin"] = bool(data["builtin"])
        data["warnings"] = json.loads(data["warnings"])
        data["mapping"] = json.loads(data.get("mapping") or "{}")
        return DatasetRecord(**data, path=self.datasets_dir / data["id"] / DATA_FILE)

    def _sweep_leftovers(self) -> None:
        """Remove temp folders and unindexed dataset folders left by a crash (older than an hour)."""
        with self._connect() as conn:
            known = {row[0] for row in conn.execute("SELECT id FROM datasets")}
        cutoff = time.time() - LEFTOVER_AGE_S
        for entry in self.datasets_dir.iterdir():
            leftover = entry.name.startswith((".upload-", ".builtin-", ".import-", ".trash-")) or (
                ID_PATTERN.match(entry.name) and entry.name not in known)
            if leftover and entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


def _meta(record: DatasetRecord) -> dict:
    """What meta.json holds (and, with builtin/warnings encoded, the SQLite row)."""
    return record.model_dump(mode="json", exclude={"path"})


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
