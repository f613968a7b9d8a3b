"""What can go wrong when a dataset is uploaded, validated or managed.

Every exception carries a message that says what is wrong, where, and how to fix it. Each is also one of the
domain error families of :mod:`backend.errors` (NotFound, Conflict, Invalid...), which gives its HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.errors import (
    Conflict,
    ErrorItem,
    Forbidden,
    Invalid,
    NotFound,
    StudioError,
    TooLarge,
    UnsupportedMedia,
)

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


class DatasetError(StudioError):
    """Base class of every dataset error; ``str(err)`` is the user-facing message."""


class DatasetValidationError(DatasetError, Invalid):
    """The file could not be turned into a dataset. ``errors`` holds the first 20 problems as dicts (location,
    field, message: what the readers and validators produce); the API body lists each as
    ``{"loc": [location, field?], "msg": message}`` with ``error_count`` counting all of them."""

    def __init__(self, message: str, errors: list[dict] | None = None, error_count: int | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])[:MAX_REPORTED_PROBLEMS]  # type: ignore[assignment]  # dicts, see above
        self.error_count = len(errors or []) if error_count is None else error_count

    def items(self) -> list[ErrorItem]:
        return [ErrorItem((p.get("location") or "file", *([p["field"]] if p.get("field") else [])),
                          str(p.get("message", ""))) for p in self.errors] or [ErrorItem((), self.message)]

    @property
    def loc(self) -> tuple:
        return self.items()[0].loc

    def body(self) -> dict:
        return {"message": self.message, "errors": [i.as_dict() for i in self.items()], "error_count": self.error_count}

    @classmethod
    def from_problems(cls, filename: str, problems: list[Problem], total: int) -> DatasetValidationError:
        first = problems[0].describe()
        noun = "problem" if total == 1 else "problems"
        message = f"{filename} was not imported ({total} {noun} found). {first}"
        if total > 1:
            message += f" ({total - 1} more listed in 'errors'.)"
        return cls(message, [p.as_dict() for p in problems], total)



class UnsupportedFileType(DatasetError, UnsupportedMedia):
    """The file extension is not one of .json, .jsonl, .csv, .parquet."""


class DatasetTooLarge(DatasetError, TooLarge):
    """The upload is bigger than ``Settings.max_upload_bytes``."""


class DatasetNameTaken(DatasetError, Conflict):
    """Another dataset already has this name (names are unique)."""


class InvalidDatasetName(DatasetError, Invalid):
    """The requested name is empty, too long, uses odd characters or looks like a dataset id."""


class DatasetNotFound(DatasetError, NotFound):
    """No dataset has this id (or name)."""


class DatasetReadOnly(DatasetError, Conflict):
    """Built-in datasets are re-registered at every start, so they cannot be renamed or deleted."""


class DatasetArchiveError(DatasetError, Invalid):
    """A .zip upload is unreadable, unsafe (path traversal) or holds the wrong number of data files."""


class ImportPathForbidden(DatasetError, Forbidden):
    """A server-side import folder lies outside the allowed import root."""


class ImportSourceNotFound(DatasetError, NotFound):
    """A server-side import folder (or its dataset_info.json) does not exist."""
