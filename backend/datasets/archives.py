"""Unpack uploaded .zip files safely: no path traversal, no zip bombs, no links.

``safe_members`` checks every entry name before anything is written; ``extract`` then copies each member
while counting the bytes really inflated (a lying header cannot get past the limit). Hidden files and
macOS resource forks (``__MACOSX/``, ``._x``, ``.DS_Store``) are ignored.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from backend.datasets.errors import DatasetArchiveError, DatasetTooLarge

_CHUNK = 1 << 20


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
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(filename, limit)
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise DatasetArchiveError(f"{filename}: '{info.filename}' could not be unpacked ({err}). Create the "
                                      "archive again.") from None
        written.append(target)
    return written


def _ignored(parts: tuple[str, ...]) -> bool:
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _too_large(filename: str, limit: int) -> DatasetTooLarge:
    return DatasetTooLarge(f"{filename} unpacks to more than the {limit:,} byte limit. Split it into smaller "
                           "archives, or raise the limit with TUNESMITH_MAX_UPLOAD_BYTES when starting the server.")


def unpack_single_data_file(path: Path, filename: str, dest: Path, limit: int,
                            data_suffixes: tuple[str, ...]) -> Path:
    """The one data file (by suffix) of the zip at ``path``, extracted under ``dest``; 422 for any other count."""
    with open_zip(path, filename) as archive:
        members = safe_members(archive, filename, limit)
        names = [m.filename for m in members]
        if any(PurePosixPath(n).name == "dataset_info.json" for n in names):
            raise DatasetArchiveError(f"{filename} is a LLaMA-Factory data folder (it has dataset_info.json). "
                                      "Import it with POST /api/v1/datasets/import instead.")
        data = [m for m in members if PurePosixPath(m.filename).suffix.lower() in data_suffixes]
        if len(data) != 1:
            found = ", ".join(PurePosixPath(m.filename).name for m in data[:5]) or "none"
            more = f" and {len(data) - 5} more" if len(data) > 5 else ""
            raise DatasetArchiveError(
                f"{filename} must hold exactly one data file ({', '.join(data_suffixes)}); found {len(data)}: "
                f"{found}{more}. Upload the files one by one, or zip a single file.")
        return extract(archive, data, dest, filename, limit)[0]
