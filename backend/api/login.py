"""The sign-in page of a studio started with a token: ``GET /login`` shows a one-field form, ``POST /login``
checks the token and sets an HttpOnly, SameSite=Strict session cookie, ``POST /logout`` clears it.

It is served by the security guard itself (plain ASGI, no Gradio), so it works before anything else is
reachable. The token travels only in the form body, never in a URL (URLs end up in logs and history). The cookie
holds an HMAC of the token, not the token: changing the token signs everyone out. The page speaks the language
the UI would (``?lang=``, the ``tunesmith_lang`` cookie, ``Accept-Language``), from its own small table.
"""

from __future__ import annotations

import hmac
import html
from urllib.parse import parse_qs, quote

from backend.api.asgi import Receive, Scope, SecurityPolicy, Send, cookie, header

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
SESSION_COOKIE = "tunesmith_session"
LANG_COOKIE = "tunesmith_lang"  # the UI's remembered language (app.i18n.COOKIE; the backend does not import app)
MAX_FORM_BYTES = 4096
SESSION_SECONDS = 30 * 24 * 3600

# The page's few strings, in the UI's languages (app/i18n holds the UI's; this page is served before the UI).
TEXT: dict[str, dict[str, str]] = {
    "en": {"html_lang": "en", "title": "Tunesmith - sign in",
           "intro": "This studio is protected by an access token. Ask whoever started it, or run "
                    "<code>tunesmith token</code> on the server to make a new one (then restart it with "
                    "<code>TUNESMITH_TOKEN</code> set).",
           "label": "Access token", "submit": "Sign in", "wrong": "That is not the access token of this studio."},
    "zh": {"html_lang": "zh-CN", "title": "Tunesmith - 登录",
           "intro": "此工作室受访问令牌保护。请向启动它的人索取，或在服务器上运行 <code>tunesmith token</code> "
                    "生成新的令牌（然后设置 <code>TUNESMITH_TOKEN</code> 重新启动）。",
           "label": "访问令牌", "submit": "登录", "wrong": "这不是此工作室的访问令牌。"},
}
LANG_NAMES = {"en": "English", "zh": "中文"}
DEFAULT_LANG = "en"

_PAGE = """<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:12vh auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}}button{{padding:.5rem 1.2rem}}
.error{{color:#b00020}}nav{{float:right}}
@media (prefers-color-scheme: dark){{body{{background:#0b0f19;color:#e5e7eb}}.error{{color:#fca5a5}}}}</style></head>
<body><nav>{switch}</nav><h1>Tunesmith</h1>
<p>{intro}</p>
{error}
<form method="post" action="{action}"><label for="token">{label}</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">{submit}</button></form></body></html>"""


def normalize_lang(code: str | None) -> str | None:
    """``zh-CN`` / ``zh_TW`` / ``ZH`` -> ``zh``; None for a language the page does not have."""
    base = str(code or "").strip().replace("_", "-").split("-")[0].lower()
    return base if base in TEXT else None


def accept_language(value: str) -> str | None:
    """The first language of an ``Accept-Language`` header this page has, by the header's preference."""
    ranked = []
    for index, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            quality = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            quality = 0.0
        ranked.append((-quality, index, tag))
    return next((lang for quality, _, tag in sorted(ranked) if quality < 0 and (lang := normalize_lang(tag))), None)


def query_lang(scope: Scope) -> str | None:
    """The language ``?lang=`` names, if the page has it."""
    values = parse_qs((scope.get("query_string") or b"").decode("latin-1")).get("lang", [])
    return next((lang for value in values if (lang := normalize_lang(value))), None)


def page_lang(scope: Scope) -> str:
    """As the UI chooses: ``?lang=``, then the remembered choice (cookie), then the browser's languages."""
    return (query_lang(scope) or normalize_lang(cookie(scope, LANG_COOKIE))
            or accept_language(header(scope, b"accept-language")) or DEFAULT_LANG)


def login_page(lang: str = DEFAULT_LANG, error: str = "", explicit: bool = False) -> bytes:
    """The form in ``lang``; ``explicit`` (the page was asked for with ``?lang=``) keeps that in the form's target,
    so the answer and the studio after it stay in that language."""
    strings = TEXT[lang]
    shown = f'<p class="error" role="alert">{html.escape(strings[error])}</p>' if error else ""
    switch = " · ".join(name if code == lang else f'<a href="login?lang={code}" hreflang="{code}">{name}</a>'
                        for code, name in LANG_NAMES.items())
    action = f"login?lang={lang}" if explicit else "login"
    return _PAGE.format(error=shown, switch=switch, action=action, **strings).encode()


async def redirect_to_login(scope: Scope, send: Send) -> None:
    """303 to the sign-in page, keeping the language a ``?lang=`` of the page asked for."""
    location = (scope.get("root_path") or "").rstrip("/") + LOGIN_PATH
    if lang := query_lang(scope):
        location += "?lang=" + quote(lang)
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


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
    lang = page_lang(scope)
    if method == "GET":
        await respond(send, 200, login_page(lang, explicit=query_lang(scope) is not None))
        return
    if method != "POST":
        await respond(send, 405, b"", [(b"allow", b"GET, POST")])
        return
    form = await read_form(receive)
    given = ((form or {}).get("token") or [""])[0].strip()
    if not given or not hmac.compare_digest(given.encode(), policy.token.encode()):
        await respond(send, 401, login_page(lang, "wrong", explicit=query_lang(scope) is not None))
        return
    # A language the sign-in was asked in explicitly (?lang=) carries on to the studio's page.
    signed_in = home + (b"?lang=" + quote(lang).encode() if query_lang(scope) else b"")
    await respond(send, 303, b"", [(b"location", signed_in),
                                   (b"set-cookie", session_cookie(scope, policy.session_value(), SESSION_SECONDS))])
