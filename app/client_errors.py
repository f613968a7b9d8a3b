"""The API's errors as the studio UI sees them: :class:`ApiError` (what every failed call raises, readable as it
is) and :func:`parse_error` (the API's one error body -> ApiError). Split out of :mod:`app.client` to keep it small;
pages import both from there."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """A failed API call, carrying a readable message and (for validation errors) per-field details."""

    def __init__(self, message: str, *, status_code: int | None = None, details: list[str] | None = None,
                 problems: list[dict] | None = None, error_count: int | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.details = details or []
        self.problems = problems or []  # the body's raw errors ({"loc", "msg"}), for pages that lay them out
        self.error_count = error_count if error_count is not None else len(self.problems)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"- {d}" for d in self.details)

    def as_markdown(self) -> str:
        """The message as Markdown: a bold first line, then one bullet per field error (not the one error the
        message already says word for word: it was printed twice)."""
        head = f"**{self.message}**"
        if not self.details or self._says_its_one_problem():
            return head
        return head + "\n\n" + "\n".join(f"- {d}" for d in self.details)

    def _says_its_one_problem(self) -> bool:
        if len(self.details) != 1:
            return False
        msg = str(self.problems[0].get("msg", "")) if len(self.problems) == 1 else ""
        return self.details[0] in self.message or bool(msg) and msg in self.message


def _format_loc(loc: Any) -> str:
    """``["body", "method", "lora", "rank"]`` -> ``method.lora.rank``; a dataset's ``["line 3", "output"]`` ->
    ``line 3 output``."""
    parts = [str(p) for p in (loc or []) if p not in ("body", "query", "path")]
    return (" " if any(" " in p for p in parts) else ".").join(parts)


def parse_error(response: httpx.Response) -> ApiError:
    """The API's one error body ``{"message", "errors": [{"loc", "msg"}], "error_count", "hint"?}`` as an
    :class:`ApiError`: the message (plus the hint), and one detail per located or extra problem."""
    status = response.status_code
    fallback = f"HTTP {status} {response.reason_phrase or ''}".strip()
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return ApiError(text[:500] if text else fallback, status_code=status)
    if not isinstance(body, dict) or not body.get("message"):
        return ApiError(fallback, status_code=status)
    message = str(body["message"]) + (f" (hint: {body['hint']})" if body.get("hint") else "")
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    details = [f"{where}: {e.get('msg', '')}" if (where := _format_loc(e.get("loc"))) else str(e.get("msg", ""))
               for e in errors]
    if len(errors) == 1 and not _format_loc(errors[0].get("loc")):  # one unlocated problem: the message says it
        details = []
    count = body.get("error_count")
    return ApiError(message, status_code=status, details=details, problems=errors,
                    error_count=count if isinstance(count, int) else None)
