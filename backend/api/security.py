"""The studio's front door: Host allow-list, Origin check, token authentication and request body caps.

One pure-ASGI middleware (``StudioGuard``) wraps the whole server, the API at ``/api/v1`` and the Gradio UI
mounted at ``/`` alike, and checks every request in this order:

1. **Host** must be a loopback name (``localhost``, ``127.0.0.1``, ``::1``), a name the server was started on,
   or a configured public name (``TUNESMITH_ALLOWED_HOSTS``); anything else is 400. This defeats DNS rebinding:
   a foreign page whose name was re-pointed at 127.0.0.1 still sends its own name as Host.
2. **Origin** (else Referer) of every state-changing request (POST, PUT, PATCH, DELETE), whatever its content
   type, must be this server itself (same Host) or a configured public name; ``Sec-Fetch-Site: cross-site`` and
   ``Origin: null`` are refused too. Answer 403 before the route runs, so nothing is created. Clients that are
   not browsers send no Origin and pass (they cannot be tricked by a foreign page).
3. **Token** (when one is set): ``Authorization: Bearer <token>`` or the session cookie that ``/login`` sets.
   Health stays open so load balancers can probe it. API paths answer 401; UI pages redirect to the login form.
   The token is never accepted in a URL (URLs end up in logs and browser history).
4. **Body size**: a JSON (or any non-multipart) body above ``max_json_bytes`` and a multipart body above
   ``max_upload_bytes`` (+ form overhead) are refused with 413 from their Content-Length before a byte is read,
   or at the first chunk past the limit when they come without one.

Answers carry the API's one error shape (``backend.errors`` ``.body()``). Behind a reverse proxy the paths are
taken relative to the ASGI ``root_path``.
"""

from __future__ import annotations

import errno
import hmac
import json
import sqlite3
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from backend.api.asgi import (  # noqa: F401 - SecurityPolicy and the ASGI types are re-exported
    ASGIApp,
    Message,
    Receive,
    Scope,
    SecurityPolicy,
    Send,
    cookie,
    header,
)
from backend.api.login import LOGIN_PATH, LOGOUT_PATH, SESSION_COOKIE, login_endpoint, redirect_to_login
from backend.errors import (
    BadRequest,
    Forbidden,
    InsufficientStorage,
    StudioError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from backend.settings import Settings

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Paths under these prefixes are API routes: unauthenticated requests get 401 JSON, never a login redirect.
# The OpenAI-style routes (/v1/...) are API routes too, present or future.
API_PREFIXES = ("/api/", "/v1/", "/openapi.json", "/docs", "/redoc")
OPEN_PATHS = frozenset({"/api/v1/health", LOGIN_PATH})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that compute an answer and store nothing: they keep working on a read-only home.
STORES_NOTHING = frozenset({"/api/v1/jobs/preview", "/api/v1/configs/normalize", "/api/v1/configs/from-llamafactory",
                            "/api/v1/configs/from-yaml"})
# A write refused by the file system (a home that went read-only while serving, a folder of another user).
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
FORM_OVERHEAD = 64 * 1024  # multipart boundaries, part headers and the small text fields beside the file


def host_allowed(name: str, policy: SecurityPolicy) -> bool:
    return name in LOOPBACK_HOSTS or name in policy.public_hosts or "*" in policy.public_hosts


def host_name(host_header: str) -> str:
    """The lower-case name of a Host header without its port: ``[::1]:7860`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def origin_allowed(origin: str, host_header: str, policy: SecurityPolicy) -> bool:
    """Whether a browser page at ``origin`` (an Origin header, or a Referer URL) may change state here: it is
    this server itself (same Host) or a configured public name."""
    if not origin or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
        name = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not name:
        return False
    return parts.netloc.lower() == host_header.strip().lower() or name in policy.public_hosts


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    return hmac.compare_digest(given.encode(), token.encode())


def relative_path(scope: Scope) -> str:
    """The request path without the reverse proxy's ``root_path`` prefix."""
    path, root = scope.get("path", "/"), (scope.get("root_path") or "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):] or "/"
    return path


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def authenticated(scope: Scope, policy: SecurityPolicy) -> bool:
    if not policy.token:
        return True
    scheme, _, given = header(scope, b"authorization").partition(" ")
    if scheme.lower() == "bearer" and given and token_matches(given.strip(), policy.token):
        return True
    session = cookie(scope, SESSION_COOKIE)
    return bool(session) and token_matches(session, policy.session_value())


def refusal(scope: Scope, policy: SecurityPolicy) -> StudioError | None:
    """The reason to refuse this request before it reaches the app (Host, Origin, token), or None."""
    host = header(scope, b"host")
    # Browsers always send Host (a rebinding page sends its own name); only non-browser HTTP/1.0 clients omit it.
    host_sent = any(key.lower() == b"host" for key, _ in scope.get("headers") or ())
    if host_sent and not host_allowed(host_name(host), policy):
        shown = host[:100] or "(none)"
        return BadRequest(f"this studio is not served under the host name '{shown}'.", loc=("header", "host"),
                          hint="Open it by the address it was started on, or add the name to "
                               "TUNESMITH_ALLOWED_HOSTS (comma-separated) when starting the server.")
    if scope["type"] == "websocket" or scope.get("method") in STATE_CHANGING:
        origin = header(scope, b"origin") or header(scope, b"referer")
        cross_site = header(scope, b"sec-fetch-site").lower() == "cross-site"
        if cross_site or (origin and not origin_allowed(origin, host, policy)):
            return Forbidden(f"a page from another site ({origin[:100] or 'cross-site'}) may not change anything "
                             "here; nothing was done.", loc=("header", "origin"),
                             hint="Use the studio's own pages, or a client that is not a browser. Behind a "
                                  "proxy under another name, add that name to TUNESMITH_ALLOWED_HOSTS.")
    path = relative_path(scope)
    if path not in OPEN_PATHS and not authenticated(scope, policy):
        return Unauthorized("this studio needs its access token.", loc=("header", "authorization"),
                            hint="Send 'Authorization: Bearer <token>' (the TUNESMITH_TOKEN the server was "
                                 "started with), or sign in at /login in a browser.")
    writes = scope.get("method") in STATE_CHANGING and is_api_path(path) and path not in STORES_NOTHING
    if policy.read_only_reason and writes:
        return read_only_error(policy.read_only_reason)
    return None


def read_only_error(reason: str) -> Unavailable:
    return Unavailable(f"{reason}: nothing was changed (the studio can only be browsed until it can write there).",
                       hint="Make the folder writable (or point TUNESMITH_HOME at a writable one) and restart "
                            "the studio; everything already there can still be browsed and downloaded.")


def body_limit(scope: Scope, policy: SecurityPolicy) -> int:
    content_type = header(scope, b"content-type").lower()
    if content_type.startswith("multipart/form-data"):
        return policy.max_upload_bytes + FORM_OVERHEAD
    return policy.max_json_bytes


def too_large(limit: int, multipart: bool) -> TooLarge:
    from backend.datasets.uploads import human_bytes

    if multipart:
        return TooLarge(f"the upload is larger than the {human_bytes(limit - FORM_OVERHEAD)} limit "
                        "(TUNESMITH_MAX_UPLOAD_BYTES).", loc=("body",),
                        hint="Split the file, or raise the limit with TUNESMITH_MAX_UPLOAD_BYTES when starting "
                             "the server.")
    return TooLarge(f"the request body is larger than the {human_bytes(limit)} limit for JSON bodies "
                    "(TUNESMITH_MAX_JSON_BYTES).",
                    loc=("body",), hint="Send less, or raise TUNESMITH_MAX_JSON_BYTES when starting the server.")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body without Content-Length grows past its limit. An HTTPException so
    FastAPI's body parsing re-raises it (it turns other exceptions into a 400) and the app answers 413."""

    def __init__(self, error: TooLarge):
        super().__init__(413, detail=f"{error.message} {error.hint}")
        self.error = error


async def send_error(send: Send, error: StudioError, extra_headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StudioGuard:
    """Pure ASGI (not BaseHTTPMiddleware) so request and response bodies stream through untouched."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error = refusal(scope, self.policy)
        if error is not None:
            await self.refuse(scope, receive, send, error)
            return
        path = relative_path(scope)
        if scope["type"] == "http" and path in (LOGIN_PATH, LOGOUT_PATH):
            await login_endpoint(path, scope, receive, send, self.policy)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.call_with_body_limit(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, error: StudioError) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        ui_page = scope.get("method") == "GET" and not is_api_path(relative_path(scope))
        if isinstance(error, Unauthorized) and ui_page:
            await redirect_to_login(scope, send)
            return
        extra = [(b"www-authenticate", b"Bearer")] if isinstance(error, Unauthorized) else []
        await send_error(send, error, extra)

    async def call_with_body_limit(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = body_limit(scope, self.policy)
        multipart = limit != self.policy.max_json_bytes
        length = header(scope, b"content-length")
        if length.isdigit() and int(length) > limit:
            await send_error(send, too_large(limit, multipart), [(b"connection", b"close")])
            return
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(too_large(limit, multipart))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await send_error(send, exc.error, [(b"connection", b"close")])
        except (OSError, sqlite3.OperationalError) as exc:
            error = file_system_error(exc)
            if started or error is None:
                raise
            await send_error(send, error)


def file_system_error(exc: BaseException) -> StudioError | None:
    """What a route's unhandled file-system failure means for the client (503 cannot write, 507 disk full), or
    None for anything else (a real bug stays a 500)."""
    code = getattr(exc, "errno", None)
    filename = getattr(exc, "filename", None)
    where = f" ({filename})" if filename else ""
    if code in DISK_FULL or "database or disk is full" in str(exc):
        return InsufficientStorage(f"the disk holding the studio's files is full{where}; this change was not "
                                   "completed.", hint="Free space there (delete old runs or datasets) or move "
                                                      "TUNESMITH_HOME to a larger disk, then try again.")
    if code in UNWRITABLE or "readonly database" in str(exc):
        return read_only_error(f"the studio could not write{where}: {getattr(exc, 'strerror', None) or exc}")
    return None


GUARD_ANSWERS = {
    "400": "The Host header names a host this studio does not serve, or the body cannot be read.",
    "401": "The access token is missing or wrong (only when the studio runs with TUNESMITH_TOKEN).",
    "403": "A browser page of another origin tried to change something; nothing was done.",
    "413": "The body is larger than TUNESMITH_MAX_JSON_BYTES (JSON) or TUNESMITH_MAX_UPLOAD_BYTES (uploads).",
    "503": "The studio's state folder cannot be written: it serves read-only.",
    "507": "The disk holding the studio's files is full; the change was not completed.",
}


def guard_statuses(path: str, method: str, operation: dict) -> list[str]:
    """The statuses the guard itself may answer for one OpenAPI operation."""
    statuses = ["400"]
    if path not in OPEN_PATHS:
        statuses.append("401")
    if method.upper() in STATE_CHANGING:
        statuses.append("403")
        if path not in STORES_NOTHING:
            statuses += ["503", "507"]
    if "requestBody" in operation:
        statuses.append("413")
    return statuses


def document_guard_answers(app: Any) -> None:
    """Add the guard's answers to every operation of the app's OpenAPI document (they come before any route)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in guard_statuses(path, method, operation):
                    responses.setdefault(status, {"description": GUARD_ANSWERS[status]})
        app.openapi_schema = spec
        return spec

    app.openapi = openapi


def install_security(app: Any, settings: Settings) -> SecurityPolicy:
    """Wrap ``app`` (a Starlette/FastAPI app) in the guard and document its answers; returns its policy."""
    policy = SecurityPolicy.from_settings(settings)
    app.add_middleware(StudioGuard, policy=policy)
    document_guard_answers(app)
    return policy
