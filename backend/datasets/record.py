"""What a registered dataset is (``DatasetRecord``) and what the upload path needs of the registry that stores
it (``DatasetStore``). Their own module so that the registry and ``uploads.py`` (which the registry calls, and
which calls the registry back) share these types without importing each other, not even for type checking."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from backend.datasets.validate import NormalizeOptions
from backend.settings import Settings


class DatasetRecord(BaseModel):
    """One registered dataset. ``size_bytes`` and ``sha256`` describe the normalized ``data.jsonl``."""

    id: str
    name: str
    format: str
    num_rows: int
    size_bytes: int
    sha256: str
    source_filename: str
    created_at: datetime
    path: Path = Field(description="Absolute path of the normalized data.jsonl.")
    builtin: bool = False
    warnings: list[dict] = Field(default_factory=list, description="First 20 warnings, e.g. duplicates.")
    warning_count: int = 0
    mapping: dict = Field(default_factory=dict, description="The field mapping given at upload or import "
                          "(format, columns, tags); empty when the format and fields were detected.")
    duplicates_dropped: int = Field(0, exclude=True, description="Rows dropped by dedup at this upload (not stored).")


class DatasetStore(Protocol):
    """The registry as the upload path uses it: name checks, a work folder, and staging then publishing datasets
    (implemented by ``backend.datasets.registry.DatasetRegistry``)."""

    settings: Settings
    datasets_dir: Path

    def check_name_free(self, name: str) -> None: ...

    def free_name(self, stem: str, reserved: set[str] | frozenset[str] = frozenset()) -> str: ...

    def work_dir(self, prefix: str) -> AbstractContextManager[Path]: ...

    def create_from_path(self, src: Path, original: str, name: str | None = None,
                         options: NormalizeOptions = ..., *, work: Path | None = None) -> DatasetRecord: ...

    def stage(self, staging: Path, src: Path, kind: str, original: str, name: str, *,
              options: NormalizeOptions = ...) -> tuple[Path, DatasetRecord]: ...

    def publish(self, staged: list[tuple[Path, DatasetRecord]]) -> list[DatasetRecord]: ...
