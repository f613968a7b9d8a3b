"""Gradio's own strings in the chosen language from the first paint.

Gradio's frontend picks its locale once, at start, from ``navigator.language``, and components mounted then keep
their built-in strings (the upload area's "Drop File Here", ...) in that locale even when it changes later. So when
the page itself is asked for with a language (``?lang=`` or the remembered ``tunesmith_lang`` cookie) this ASGI
middleware puts a script at the top of the page's ``<head>`` that makes ``navigator.language`` say that language
before Gradio starts. Without a chosen language the browser's own stands (Gradio's default).
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from app.i18n import COOKIE, LANGUAGES, normalize


def chosen_language(query_string: bytes, cookie_header: str) -> str | None:
    """The language a page request names: ``?lang=`` first, then the cookie; None when it names none."""
    for candidate in parse_qs(query_string.decode("latin-1")).get("lang", []):
        if normalize(candidate):
            return normalize(candidate)
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header)
    except Exception:  # a malformed Cookie header names no language (http.cookies raises CookieError and others)
        return None
    return normalize(cookie[COOKIE].value) if COOKIE in cookie else None


def navigator_script(lang: str) -> bytes:
    locale = LANGUAGES[lang].gradio_locales[0]
    return (
        "<script>(function(){var l=" + json.dumps(locale) + ";try{"
        "Object.defineProperty(Navigator.prototype,'language',{get:function(){return l},configurable:true});"
        "Object.defineProperty(Navigator.prototype,'languages',{get:function(){return [l]},configurable:true});"
        "document.documentElement.lang=l;}catch(e){}})();</script>"
    ).encode()


class PageLanguageMiddleware:
    """Wrap the studio's ASGI app: ``GET /`` answered in HTML gets :func:`navigator_script` for the chosen
    language; every other request passes untouched."""

    def __init__(self, app: Any, path: str = "/"):
        self.app, self.path = app, path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        lang = chosen_language(scope.get("query_string", b""), headers.get(b"cookie", b"").decode("latin-1"))
        if lang is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def rewrite(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body)
            response_headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            content_type = dict(response_headers).get(b"content-type", b"")
            if b"text/html" in content_type and b"<head>" in page:
                page = page.replace(b"<head>", b"<head>" + navigator_script(lang), 1)
            await send({**start, "headers": [*response_headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, rewrite)
