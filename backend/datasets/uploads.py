"""Turn an uploaded byte stream into registered datasets.

The upload is copied to a work folder inside the datasets dir in 1 MiB chunks (never held whole in memory),
stopping with DatasetTooLarge at max_upload_bytes. A data file becomes one dataset. A ``.zip`` becomes one
dataset per data file it holds (named after each file's stem, made unique), registered together: every file
is validated first, and if any is rejected nothing is registered and the error names each bad file with its
rows ("bad.jsonl line 7"). The work folder is removed whatever happens.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from backend.datasets.archives import unpack_data_files
from backend.datasets.errors import (
    MAX_REPORTED_PROBLEMS,
    DatasetTooLarge,
    DatasetValidationError,
)
from backend.datasets.names import check_dataset_name
from backend.datasets.readers import FILE_TYPES, TEXT_FILE_TYPES, file_type, source_filename
from backend.datasets.record import DatasetRecord, DatasetStore
from backend.datasets.validate import NormalizeOptions
from backend.errors import InsufficientStorage

COPY_CHUNK = 1 << 20


def register_upload(registry: DatasetStore, filename: str, fileobj: BinaryIO, name: str | None,
                    options: NormalizeOptions) -> list[DatasetRecord]:
    """The datasets created from one upload: one for a data file (or a zip of one), several for a zip of
    several. ``name`` names a lone file and prefixes the names of several; ``options`` apply to every file."""
    original = source_filename(filename)
    is_zip = Path(original).suffix.lower() == ".zip"
    kind = None if is_zip else file_type(original)  # refuse an unknown extension before reading the body
    if name is not None:
        name = check_dataset_name(name)
        if not is_zip:
            registry.check_name_free(name)
    try:
        return _register(registry, original, is_zip, kind, fileobj, name, options)
    except (OSError, sqlite3.OperationalError) as err:
        full = getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in str(err)
        if not full:
            raise
        raise disk_full(registry.datasets_dir, upload_size(fileobj), is_zip) from None


def _register(registry: DatasetStore, original: str, is_zip: bool, kind: str | None, fileobj: BinaryIO,
              name: str | None, options: NormalizeOptions) -> list[DatasetRecord]:
    limit = registry.settings.max_upload_bytes
    with registry.work_dir(".upload-") as work:
        upload = work / ("upload.zip" if is_zip else f"upload.{kind}")
        copy_limited(fileobj, upload, limit)
        if not is_zip:
            return [registry.create_from_path(upload, original, name, options, work=work)]
        files = unpack_data_files(upload, original, work / "unzipped", limit, (*FILE_TYPES, *TEXT_FILE_TYPES))
        if len(files) == 1:
            inner = files[0][1]
            return [registry.create_from_path(inner, inner.name, name, options, work=work)]
        return register_together(registry, work, original, files, name, options)


def register_together(registry: DatasetStore, work: Path, zip_name: str, files: list[tuple[str, Path]],
                      prefix: str | None, options: NormalizeOptions) -> list[DatasetRecord]:
    """Stage every (name in the zip, extracted path) of ``files``, then publish them in one go; all or none."""
    staged, failures, planned = [], [], set()
    for number, (inner, path) in enumerate(files):
        stem = PurePosixPath(inner).stem
        name = registry.free_name(f"{prefix}-{stem}" if prefix else stem, reserved=planned)
        planned.add(name.lower())
        try:
            staged.append(registry.stage(work / f"dataset-{number}", path, file_type(inner),
                                         PurePosixPath(inner).name, name, options=options))
        except DatasetValidationError as err:
            failures.append((inner, err))
    if failures:
        raise archive_rejected(zip_name, failures)
    return registry.publish(staged)


def archive_rejected(zip_name: str, failures: list[tuple[str, DatasetValidationError]]) -> DatasetValidationError:
    """One error for the rejected files of a zip: each file's problems, located as '<file> line 7'."""
    bad = [inner for inner, _ in failures]
    errors = [{**problem, "location": f"{inner} {problem.get('location') or ''}".strip()}
              for inner, err in failures for problem in err.errors]
    verb = "is" if len(bad) == 1 else "are"
    message = (f"{zip_name}: nothing was registered, {len(bad)} of its data files {verb} rejected "
               f"({', '.join(bad)}). {failures[0][1].message}")
    if len(bad) > 1:
        message += " The other files' problems are listed in 'errors'."
    message += " Fix the files (or leave them out of the zip) and upload it again."
    return DatasetValidationError(message, errors[:MAX_REPORTED_PROBLEMS], sum(e.error_count for _, e in failures))


def copy_limited(fileobj: BinaryIO, dest: Path, limit: int) -> None:
    """Copy ``fileobj`` to ``dest`` chunk by chunk; DatasetTooLarge as soon as more than ``limit`` bytes came."""
    total = 0
    with open(dest, "wb") as out:
        while chunk := fileobj.read(COPY_CHUNK):
            total += len(chunk)
            if total > limit:
                raise DatasetTooLarge(
                    f"the upload is larger than the {human_bytes(limit)} limit. Split the file, or raise the "
                    "limit with TUNESMITH_MAX_UPLOAD_BYTES when starting the server."
                )
            out.write(chunk)


def upload_size(fileobj: BinaryIO) -> int | None:
    """The upload's total size (Starlette spools it to a seekable file), or None if it cannot be told."""
    try:
        return fileobj.seek(0, 2)
    except (OSError, ValueError, AttributeError):
        return None


def disk_full(folder: Path, size: int | None, is_zip: bool) -> InsufficientStorage:
    """507 for an upload the disk could not hold: how much it needs (the copy, then the normalized data of about
    the same size; a zip: its unpacked files too) against what is free. The work folder is already gone."""
    free = shutil.disk_usage(folder).free
    if size is None:
        need = "about twice the file's size"
    else:
        need = f"about {human_bytes(size * (3 if is_zip else 2))}" + (" (for a zip, more: its files unpacked)"
                                                                     if is_zip else "")
    return InsufficientStorage(f"the disk holding {folder} is full: storing this upload needs {need}, and "
                               f"{human_bytes(free)} is free. Nothing was kept.", loc=("body", "file"),
                               hint="Free space there (delete old runs or datasets), or move TUNESMITH_HOME to a "
                                    "larger disk, then upload again.")


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
