"""Checks on server-side paths a client sends (a model folder, a folder to import).

``~`` and ``~user`` are never expanded: expanding them would let any client probe which accounts exist on the
server (an unknown user even crashed the lookup), and a path meant for the server should not depend on whose
shell it was typed in. A NUL byte cannot be in a path. Both are refused as 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.errors import Invalid


class UnusablePath(Invalid):
    """A client-sent path that is refused before the file system is asked anything about it."""


def check_client_path(text: str, loc: Sequence[str | int]) -> str:
    """``text`` unchanged if it may be looked up on the server; UnusablePath (422) otherwise."""
    if text.startswith("~"):
        raise UnusablePath(f"'{text[:200]}': paths starting with '~' are not expanded on the server; give the "
                           "absolute path (e.g. /home/NAME/models/x) or a name from the list.", loc=loc)
    if "\x00" in text:
        raise UnusablePath("the path contains a NUL character; give a plain absolute path.", loc=loc)
    return text
