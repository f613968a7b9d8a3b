"""What the studio's plain-ASGI front door (``backend.api.security``) and its sign-in page (``backend.api.login``)
share: the ASGI callable types, the access policy, and readers of a request's headers. A module of its own so
the two import it instead of each other."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from backend.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

@dataclass(frozen=True)
class SecurityPolicy:
    """What the guard lets through. ``public_hosts`` are names the studio is reached by (besides loopback):
    trusted as Host and as Origin. ``"*"`` among them turns the Host check off (a proxy does it)."""

    token: str | None
    public_hosts: frozenset[str]
    max_json_bytes: int
    max_upload_bytes: int
    read_only_reason: str | None = None  # the home cannot be written: API writes answer 503 with this

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityPolicy:
        return cls(token=settings.token or None,
                   public_hosts=frozenset(h.lower() for h in settings.allowed_hosts),
                   max_json_bytes=settings.max_json_bytes, max_upload_bytes=settings.max_upload_bytes,
                   read_only_reason=settings.read_only_reason)

    def session_value(self) -> str:
        """The session cookie's value: derived from the token (so changing the token logs everyone out), but
        not the token itself."""
        assert self.token
        return hmac.new(self.token.encode(), b"tunesmith-session-v1", hashlib.sha256).hexdigest()


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def cookie(scope: Scope, name: str) -> str:
    for part in header(scope, b"cookie").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""
