"""Every string the studio shows goes through :func:`t`.

Two ways to use it:

- ``t("train.start")`` (no language) returns a Gradio translation marker for a static string (a label, a help
  text, a button, a Markdown block built once). The browser translates it with the catalogs that
  :func:`gradio_i18n` hands to Gradio, so the header switch flips these live without a round trip.
- ``t("runs.step", lang, step=3)`` returns the finished text in ``lang``, for what a handler writes (status lines,
  table cells, plot titles). Handlers get ``lang`` from the request (:func:`request_lang`) via :func:`localized`.

One catalog per language (``app/i18n/en.py``, ``zh.py``, each merging its ``*_fields``/``*_pages`` parts; a key ->
``str.format`` template dict). Adding ja/ko/ru
is one more file plus a line in :data:`LANGUAGES`. English is the reference: a key missing there is a bug
(``KeyError`` at build time); a key missing in another language shows the English text, and
``tests/unit/test_app_i18n.py`` fails on it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import gradio as gr
from gradio.i18n import I18nData

from app.i18n import en, zh

COOKIE = "tunesmith_lang"
DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    code: str  # what ?lang= and the cookie say
    name: str  # how the header switch shows it, in the language itself
    gradio_locales: tuple[str, ...]  # the locales Gradio's own strings use for it
    messages: dict[str, str]


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English", ("en",), en.MESSAGES),
    "zh": Language("zh", "中文", ("zh-CN", "zh"), zh.MESSAGES),
}

# Static strings with format arguments: the marker key -> (catalog key, arguments). Filled while the UI is built,
# handed to Gradio with the catalogs (each language's text is formatted once).
_FORMATTED: dict[str, tuple[str, dict[str, Any]]] = {}


def normalize(code: str | None) -> str | None:
    """``zh-CN`` / ``zh_TW`` / ``ZH`` -> ``zh``; None for a language the studio does not have."""
    if not code:
        return None
    base = str(code).strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def text(key: str, lang: str, **fmt: Any) -> str:
    """The catalog text of ``key`` in ``lang`` (English where that language lacks it), formatted with ``fmt``;
    an argument that is itself a marker from :func:`t` is put in as its text in ``lang``."""
    messages = LANGUAGES.get(lang, LANGUAGES[DEFAULT]).messages
    if fmt.get("count") == 1 and f"{key}.one" in messages:  # a language with a singular form writes it as key.one
        key = f"{key}.one"
    template = messages.get(key)
    if template is None:
        template = LANGUAGES[DEFAULT].messages[key]  # KeyError: a key nobody wrote is a bug
    if not fmt:
        return template
    return template.format(**{name: resolve(value, lang) for name, value in fmt.items()})


def resolve(value: Any, lang: str) -> Any:
    """A marker from :func:`t` as its text in ``lang``; anything else unchanged."""
    if not isinstance(value, I18nData):
        return value
    if value.key in _FORMATTED:
        key, fmt = _FORMATTED[value.key]
        return text(key, lang, **fmt)
    return text(value.key, lang)


def t(key: str, lang: str | None = None, **fmt: Any) -> Any:
    """The one lookup: a translation marker for static UI text (``lang`` None), or the text in ``lang``."""
    if lang is not None:
        return text(key, lang, **fmt)
    text(key, DEFAULT, **fmt)  # fail at build time on an unknown key or a missing argument
    if not fmt:
        return I18nData(key)
    # The frontend parses markers as JSON inside the text: keep the key plain (a digest of the arguments).
    arguments = json.dumps(fmt, sort_keys=True, default=lambda v: getattr(v, "key", str(v)), ensure_ascii=False)
    marker = f"{key}#{hashlib.sha1(arguments.encode()).hexdigest()[:12]}"
    _FORMATTED[marker] = (key, fmt)
    return I18nData(marker)


def catalog(lang: str) -> dict[str, str]:
    """Every static string in ``lang``: the catalog plus the formatted strings built so far."""
    messages = {**LANGUAGES[DEFAULT].messages, **LANGUAGES[lang].messages}
    messages.update({marker: text(key, lang, **fmt) for marker, (key, fmt) in _FORMATTED.items()})
    return messages


def gradio_i18n() -> gr.I18n:
    """The catalogs for Gradio's frontend, under each Gradio locale of each language (call after building)."""
    return gr.I18n(**{locale: catalog(lang.code) for lang in LANGUAGES.values() for locale in lang.gradio_locales})


def accept_language(header: str | None) -> str | None:
    """The first studio language in an ``Accept-Language`` header, by preference."""
    ranked = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag))
    return next((normalize(tag) for _, _, tag in sorted(ranked) if normalize(tag)), None)


def request_lang(request: gr.Request | None) -> str:
    """The language a browser asked for: ``?lang=`` on the page (the Referer of Gradio's calls), the remembered
    choice (cookie), the browser's languages, else English. The page's script (:data:`LANG_JS`) decides the same
    way and keeps the cookie and the URL in step with the header switch."""
    if request is None:
        return DEFAULT
    headers = getattr(request, "headers", None) or {}
    page_query = parse_qs(urlparse(headers.get("referer", "")).query)
    for candidate in (*page_query.get("lang", []), (getattr(request, "cookies", None) or {}).get(COOKIE)):
        if normalize(candidate):
            return normalize(candidate)  # type: ignore[return-value]
    return accept_language(headers.get("accept-language")) or DEFAULT


def localized(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A Gradio handler for ``fn(lang, *inputs)``: Gradio passes the request, ``fn`` gets its language.
    Generators stay generators (Gradio streams them)."""
    if inspect.isgeneratorfunction(getattr(fn, "func", fn)):  # a partial of a generator function streams too
        def stream(request: gr.Request, *inputs: Any):
            yield from fn(request_lang(request), *inputs)
        handler: Callable[..., Any] = stream
    else:
        def handler(request: gr.Request, *inputs: Any):
            return fn(request_lang(request), *inputs)
    # Not functools.wraps: Gradio finds the request parameter in the wrapper's own signature and annotations.
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "handler")  # partial
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = fn.__doc__
    return handler
