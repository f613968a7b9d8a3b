"""The studio's domain errors: what went wrong, in words a user can act on, and which HTTP status it maps to.

Services raise these; the API turns every one of them into the single error shape

    {"message": str, "errors": [{"loc": [...], "msg": str}], "error_count": int, "hint"?: str}

with one exception handler (``backend.api.errors``), so route functions carry no ``except`` blocks. This module
imports neither FastAPI nor torch: the engine, the CLI and the services can all raise and catch these.

Subclass one of the families below (``class JobNotFound(NotFound)``) rather than adding a new status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ErrorItem:
    """One thing that was wrong: where (``loc``, e.g. ``("body", "learning_rate")``) and what (``msg``)."""

    loc: Loc
    msg: str

    def as_dict(self) -> dict:
        return {"loc": list(self.loc), "msg": self.msg}


class StudioError(Exception):
    """Base of every error a client can cause or be told about. ``status`` is its HTTP status."""

    status: int = 400

    def __init__(self, message: str, *, loc: Sequence[str | int] | None = None, hint: str | None = None,
                 errors: Sequence[ErrorItem] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if errors:
            self.errors: tuple[ErrorItem, ...] = tuple(errors)
        else:
            self.errors = (ErrorItem(tuple(loc) if loc else (), message),)

    @property
    def loc(self) -> Loc:
        return self.errors[0].loc

    def body(self) -> dict:
        """The JSON body every 4xx/5xx of the API carries."""
        body = {"message": self.message, "errors": [e.as_dict() for e in self.errors], "error_count": len(self.errors)}
        if self.hint:
            body["hint"] = self.hint
        return body


class Invalid(StudioError):
    """The request is well-formed but its content is wrong (a field out of range, an unknown format...)."""

    status = 422


class BadRequest(StudioError):
    """The request itself cannot be read (not JSON, not a zip, a Host header we do not serve...)."""

    status = 400


class Unauthorized(StudioError):
    status = 401


class Forbidden(StudioError):
    status = 403


class NotFound(StudioError):
    status = 404


class Conflict(StudioError):
    """The target exists but its state forbids this now (job not finished, dataset in use, name taken)."""

    status = 409


class Busy(Conflict):
    """The same work is already running for this target (an evaluation, a merge, an export); try again later."""


class TooLarge(StudioError):
    status = 413


class UnsupportedMedia(StudioError):
    status = 415


class Unavailable(StudioError):
    """The studio cannot do it right now or on this machine (read-only home, a package not installed...)."""

    status = 503


class InsufficientStorage(StudioError):
    """The disk filled up while writing; nothing was kept."""

    status = 507


class EngineFailed(StudioError):
    """An engine subprocess (merge, evaluate, export, preview) failed on this input; ``message``/``hint`` are its
    own one-line error and hint. 422, not 500: no request may produce a 5xx but 503/507, and the engine's lines
    say what in the run, model or dataset could not be processed."""

    status = 422
