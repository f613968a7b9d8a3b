"""Stream a directory as a zip archive chunk by chunk (never holding the archive in memory)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1024 * 1024


class ChunkSink:
    """A write-only, non-seekable file object that collects bytes for the generator to hand out."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    @property
    def pending(self) -> int:
        """Bytes written since the last :meth:`drain`."""
        return sum(len(p) for p in self._parts)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def iter_zip(directory: Path, prefix: str) -> Iterator[bytes]:
    """Yield a zip of every file under ``directory``, stored under ``prefix/`` in the archive."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    sink = ChunkSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for path in files:
            arcname = f"{prefix}/{path.relative_to(directory).as_posix()}"
            with open(path, "rb") as src, zf.open(arcname, mode="w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    if (data := sink.drain()):
                        yield data
            if (data := sink.drain()):
                yield data
    if (data := sink.drain()):
        yield data
