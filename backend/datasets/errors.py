"""What can go wrong when a dataset is uploaded, validated or managed.

Every exception carries a message that says what is wrong, where, and how to fix it; the API maps each
class to one HTTP status (see backend/api/routes/datasets.py).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One finding about an uploaded file. ``location`` is "line 7" (JSONL), "record 3" or "file"."""

    location: str
    message: str
    field: str | None = None

    def describe(self) -> str:
        return f"{self.location}: {self.message}"

    def as_dict(self) -> dict:
        return {"location": self.location, "field": self.field, "message": self.message}


class DatasetError(Exception):
    """Base class of every dataset error; ``str(err)`` is the user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatasetValidationError(DatasetError):
    """The file could not be turned into a dataset. ``errors`` holds the first 20 problems (as dicts)."""

    def __init__(self, message: str, errors: list[dict] | None = None, error_count: int | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])[:MAX_REPORTED_PROBLEMS]
        self.error_count = len(errors or []) if error_count is None else error_count

    @classmethod
    def from_problems(cls, filename: str, problems: list[Problem], total: int) -> "DatasetValidationError":
        first = problems[0].describe()
        noun = "problem" if total == 1 else "problems"
        message = f"{filename} was not imported ({total} {noun} found). {first}"
        if total > 1:
            message += f" ({total - 1} more listed in 'errors'.)"
        return cls(message, [p.as_dict() for p in problems], total)

    def as_detail(self) -> dict:
        return {"message": self.message, "errors": self.errors, "error_count": self.error_count}


class UnsupportedFileType(DatasetError):
    """The file extension is not one of .json, .jsonl, .csv, .parquet."""


class DatasetTooLarge(DatasetError):
    """The upload is bigger than ``Settings.max_upload_bytes``."""


class DatasetNameTaken(DatasetError):
    """Another dataset already has this name (names are unique)."""


class InvalidDatasetName(DatasetError):
    """The requested name is empty, too long, uses odd characters or looks like a dataset id."""


class DatasetNotFound(DatasetError):
    """No dataset has this id (or name)."""


class DatasetReadOnly(DatasetError):
    """Built-in datasets are re-registered at every start, so they cannot be renamed or deleted."""


class DatasetArchiveError(DatasetError):
    """A .zip upload is unreadable, unsafe (path traversal) or holds the wrong number of data files."""


class ImportPathForbidden(DatasetError):
    """A server-side import folder lies outside the allowed import root."""


class ImportSourceNotFound(DatasetError):
    """A server-side import folder (or its dataset_info.json) does not exist."""
