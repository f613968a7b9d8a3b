"""Unpack uploaded .zip files safely: no path traversal, no zip bombs, no links.

``safe_members`` checks every entry name before anything is written; ``extract`` then copies each member
while counting the bytes really inflated (a lying header cannot get past the limit), and stops a member that
inflates more than MAX_RATIO times its compressed size (a zip bomb) once past RATIO_FLOOR. Hidden files and
macOS resource forks (``__MACOSX/``, ``._x``, ``.DS_Store``) are ignored. ``unpack_data_files`` gives every data
file of an upload zip (each becomes its own dataset).
"""

from __future__ import annotations

import errno
import stat
import zipfile
from pathlib import Path, PurePosixPath

from backend.datasets.errors import DatasetArchiveError, DatasetTooLarge

_CHUNK = 1 << 20
# A member may inflate to more than MAX_RATIO times its compressed size only while it stays under RATIO_FLOOR:
# text datasets compress 3-20x; a bomb (a 1 MB zip of one 1 GiB line) is refused after RATIO_FLOOR, not at the
# 2 GiB upload limit. The ratio counts bytes really inflated, so a lying header cannot get past it.
MAX_RATIO = 200
RATIO_FLOOR = 32 * 1024 * 1024


def open_zip(path: Path, filename: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetArchiveError(f"{filename} is not a readable .zip file ({err}). Create it again, e.g. with "
                                  "`zip -r data.zip folder/`.") from None


def safe_members(archive: zipfile.ZipFile, filename: str, limit: int) -> list[zipfile.ZipInfo]:
    """The regular files of ``archive`` worth extracting; DatasetArchiveError / DatasetTooLarge otherwise."""
    members, total = [], 0
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DatasetArchiveError(f"{filename} contains the unsafe path '{name}' (absolute or with '..'); "
                                      "archives must only hold relative paths inside the folder.")
        if info.is_dir() or _ignored(parts):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetArchiveError(f"{filename} contains the symbolic link '{name}'; put the real file in the "
                                      "archive instead.")
        if info.flag_bits & 0x1:
            raise DatasetArchiveError(f"{filename} is encrypted ('{name}'); upload an archive without a password.")
        total += info.file_size
        if total > limit:
            raise _too_large(filename, limit)
        members.append(info)
    return members


def extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, filename: str,
            limit: int) -> list[Path]:
    """Copy ``members`` (from ``safe_members``) under ``dest``; the inflated total may not exceed ``limit``."""
    written, total = [], 0
    for info in members:
        target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as src, open(target, "wb") as out:
                inflated = 0
                while chunk := src.read(_CHUNK):
                    total, inflated = total + len(chunk), inflated + len(chunk)
                    if total > limit:
                        raise _too_large(filename, limit)
                    if inflated > RATIO_FLOOR and inflated > MAX_RATIO * max(info.compress_size, 1):
                        raise _bomb(filename, info)
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # the disk is full, the archive is fine: uploads.py answers 507
            raise DatasetArchiveError(f"{filename}: '{info.filename}' could not be unpacked ({err}). Create the "
                                      "archive again.") from None
        written.append(target)
    return written


def _ignored(parts: tuple[str, ...]) -> bool:
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _bomb(filename: str, info: zipfile.ZipInfo) -> DatasetTooLarge:
    return DatasetTooLarge(f"{filename}: '{info.filename}' inflates to more than {MAX_RATIO} times its compressed "
                           f"size ({info.compress_size:,} bytes), which no real dataset does; nothing was kept. "
                           "Zip the data files themselves.")


def _too_large(filename: str, limit: int) -> DatasetTooLarge:
    return DatasetTooLarge(f"{filename} unpacks to more than the {limit:,} byte limit. Split it into smaller "
                           "archives, or raise the limit with TUNESMITH_MAX_UPLOAD_BYTES when starting the server.")


MAX_DATA_FILES = 100


def unpack_data_files(path: Path, filename: str, dest: Path, limit: int,
                      data_suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Every data file (by suffix) of the zip at ``path``, extracted under ``dest``, as (name in the zip, path)
    sorted by name; other files (a README, ...) are ignored. 422 for none, more than MAX_DATA_FILES, or a
    LLaMA-Factory data folder (it has dataset_info.json: that goes to POST /api/v1/datasets/import)."""
    with open_zip(path, filename) as archive:
        members = safe_members(archive, filename, limit)
        if any(PurePosixPath(m.filename).name == "dataset_info.json" for m in members):
            raise DatasetArchiveError(f"{filename} is a LLaMA-Factory data folder (it has dataset_info.json). "
                                      "Import it with POST /api/v1/datasets/import instead (in the studio: "
                                      "'Import from LLaMA-Factory').")
        data = sorted((m for m in members if PurePosixPath(m.filename).suffix.lower() in data_suffixes),
                      key=lambda m: m.filename)
        if not data:
            others = ", ".join(PurePosixPath(m.filename).name for m in members[:5]) or "nothing"
            raise DatasetArchiveError(f"{filename} holds no data file ({', '.join(data_suffixes)}); found 0 "
                                      f"(it holds: {others}). Zip the .json/.jsonl/.csv/.parquet files themselves.")
        if len(data) > MAX_DATA_FILES:
            raise DatasetArchiveError(f"{filename} holds {len(data)} data files; at most {MAX_DATA_FILES} can be "
                                      "uploaded in one zip. Split it into several zips, or merge the files.")
        paths = extract(archive, data, dest, filename, limit)
    return [(m.filename, p) for m, p in zip(data, paths)]


def unpack_single_data_file(path: Path, filename: str, dest: Path, limit: int,
                            data_suffixes: tuple[str, ...]) -> Path:
    """The one data file of the zip at ``path`` (see ``unpack_data_files``); 422 if it holds several."""
    with open_zip(path, filename) as archive:
        data = [m.filename for m in safe_members(archive, filename, limit)
                if PurePosixPath(m.filename).suffix.lower() in data_suffixes]
    if len(data) > 1:
        raise DatasetArchiveError(f"{filename} must hold exactly one data file; found {len(data)}: "
                                  f"{', '.join(PurePosixPath(n).name for n in data[:5])}.")
    return unpack_data_files(path, filename, dest, limit, data_suffixes)[0][1]
