"""A refused dataset file (upload or LLaMA-Factory import) as Markdown that says each problem once.

The API's message is self-contained for programs: "x.jsonl was not imported (2 problems found). line 2: <the
first problem> (1 more listed in 'errors'.)", and ``errors`` lists every problem again, the first included. The
page showed the first problem twice (message and list) and hid the rest behind "listed in 'errors'"; here the
message keeps its head and its advice, and the list below it shows every problem the API sent (the first 20),
plus how many more there are.
"""

from __future__ import annotations

import re

from app.client import ApiError
from app.format import error_markdown
from app.i18n import DEFAULT, t

_MORE_IN_ERRORS = re.compile(r"\s*\((?:\d+ more|the other files' problems are) listed in 'errors'\.?\)\.?|"
                             r"\s*The other files' problems are listed in 'errors'\.", re.IGNORECASE)
_MIN_REPEATED = 12  # a shorter problem text could match an unrelated part of the message


def message_without_problems(message: str, problems: list[dict]) -> str:
    """``message`` less the problem sentences that ``problems`` lists anyway, and less its pointers to
    'errors' (the page lists them): each repeated problem is cut from the start of its sentence (after the
    previous ". ") to its end."""
    for problem in problems:
        text = str(problem.get("msg") or "").strip()
        at = message.find(text) if len(text) >= _MIN_REPEATED else -1
        if at < 0:
            continue
        start = message.rfind(". ", 0, at)
        start = start + 1 if start >= 0 else at
        message = (message[:start] + message[at + len(text):]).strip()
    return re.sub(r"\s{2,}", " ", _MORE_IN_ERRORS.sub("", message)).strip()


def refusal_markdown(exc: Exception, lang: str = DEFAULT) -> str:
    """:func:`app.format.error_markdown` for a refused file, each problem once and every listed one shown."""
    if not isinstance(exc, ApiError) or not exc.problems or len(exc.details) < 1:
        return error_markdown(exc, lang)
    head = message_without_problems(exc.message, exc.problems)
    details = list(exc.details)
    if exc.error_count > len(details):
        details.append(t("upload.more_problems", lang, count=exc.error_count - len(details)))
    return error_markdown(ApiError(head or exc.message, status_code=exc.status_code, details=details), lang)


_COLUMN_PROBLEMS = ("unknown dataset format", "required field '")


def about_columns(exc: Exception) -> bool:
    """True when a refusal is about field names (an unknown format, a missing field, a mapped column no record
    has): the column mapping is the way in, so the page points to it; a JSON syntax error is not."""
    if not isinstance(exc, ApiError) or exc.status_code != 422:
        return False
    for problem in exc.problems:
        loc, msg = problem.get("loc") or [], str(problem.get("msg") or "")
        if any(key in msg for key in _COLUMN_PROBLEMS) or (loc and loc[0] == "columns"):
            return True
    return False
