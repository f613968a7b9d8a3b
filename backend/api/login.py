"""The sign-in page of a studio started with a token: ``GET /login`` shows a one-field form, ``POST /login``
checks the token and sets an HttpOnly, SameSite=Strict session cookie, ``POST /logout`` clears it.

It is served by the security guard itself (plain ASGI, no Gradio), so it works before anything else is
reachable. The token travels only in the form body, never in a URL (URLs end up in logs and history). The cookie
holds an HMAC of the token, not the token: changing the token signs everyone out.
"""

from __future__ import annotations

import hmac
import html
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from backend.api.security import Receive, Scope, SecurityPolicy, Send

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
SESSION_COOKIE = "tunesmith_session"
MAX_FORM_BYTES = 4096
SESSION_SECONDS = 30 * 24 * 3600

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tunesmith - sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:12vh auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}}button{{padding:.5rem 1.2rem}}
.error{{color:#b00020}}</style></head>
<body><h1>Tunesmith</h1>
<p>This studio is protected by an access token. Ask whoever started it, or run <code>tunesmith token</code>
on the server to make a new one (then restart it with <code>TUNESMITH_TOKEN</code> set).</p>
{error}
<form method="post" action="login"><label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form></body></html>"""


def login_page(error: str = "") -> bytes:
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(error=shown).encode()


def session_cookie(scope: Scope, value: str, max_age: int) -> bytes:
    path = (scope.get("root_path") or "").rstrip("/") or "/"
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return (f"{SESSION_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
            ).encode()


async def read_form(receive: Receive) -> dict[str, list[str]] | None:
    """The url-encoded form body, or None when it is larger than MAX_FORM_BYTES."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body"):
            break
    return parse_qs(body.decode("utf-8", errors="replace"))


async def respond(send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None,
                  content_type: bytes = b"text/html; charset=utf-8") -> None:
    all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def login_endpoint(path: str, scope: Scope, receive: Receive, send: Send, policy: SecurityPolicy) -> None:
    """GET/POST /login and POST /logout (``path``, relative to the root path). The guard has already checked
    Host and Origin (and, for /logout, the session)."""
    root = (scope.get("root_path") or "").rstrip("/")
    home = (root + "/").encode()
    method = scope.get("method")
    if path == LOGOUT_PATH:
        if method != "POST":
            await respond(send, 405, b"", [(b"allow", b"POST")])
            return
        await respond(send, 303, b"", [(b"location", (root + LOGIN_PATH).encode()),
                                       (b"set-cookie", session_cookie(scope, "", 0))])
        return
    if not policy.token:  # no token: nothing to sign in to
        await respond(send, 303, b"", [(b"location", home)])
        return
    if method == "GET":
        await respond(send, 200, login_page())
        return
    if method != "POST":
        await respond(send, 405, b"", [(b"allow", b"GET, POST")])
        return
    form = await read_form(receive)
    given = ((form or {}).get("token") or [""])[0].strip()
    if not given or not hmac.compare_digest(given.encode(), policy.token.encode()):
        await respond(send, 401, login_page("That is not the access token of this studio."))
        return
    await respond(send, 303, b"", [(b"location", home),
                                   (b"set-cookie", session_cookie(scope, policy.session_value(), SESSION_SECONDS))])
