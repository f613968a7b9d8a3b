"""The header's language and dark-mode switches, and the page scripts that apply them in the browser.

The browser side: pick the language (``?lang=`` > remembered choice > the browser's languages > English), remember
it (localStorage and the ``tunesmith_lang`` cookie, which :func:`app.i18n.request_lang` reads on the server), and
switch Gradio's frontend locale, which re-renders every static string (ours via :func:`app.i18n.gradio_i18n`,
Gradio's own from its bundled catalogs) in place. Gradio 6 exposes no locale setting to Python: its frontend
module ``assets/core-<hash>.js`` exports ``changeLocale``, so the script imports that module (the same URL the
page loaded, hence the same instance).
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from app.i18n import COOKIE, DEFAULT, LANGUAGES, t, text


def gradio_core_module() -> str:
    """The asset path of Gradio's frontend core module (its file name carries a build hash)."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    found = sorted(p.name for p in assets.glob("core-*.js"))
    if len(found) != 1:
        raise RuntimeError(f"expected one Gradio frontend core module in {assets}, found {found}: the language "
                           "switch needs it (has the installed Gradio changed?)")
    return "assets/" + found[0]


def _apply_js() -> str:
    """A JS function body ``apply(lang)``: remember the language, put it in the URL if the URL names one, switch
    Gradio's locale."""
    locales = {code: lang.gradio_locales[0] for code, lang in LANGUAGES.items()}
    return f"""
    const LOCALES = {json.dumps(locales)};
    const norm = (c) => {{
      if (!c) return null;
      const base = String(c).toLowerCase().replace('_', '-').split('-')[0];
      return base in LOCALES ? base : null;
    }};
    const apply = async (lang) => {{
      lang = norm(lang) || {json.dumps(DEFAULT)};
      try {{ localStorage.setItem({json.dumps(COOKIE)}, lang); }} catch (e) {{}}
      document.cookie = {json.dumps(COOKIE)} + '=' + lang + '; path=/; max-age=31536000; SameSite=Lax';
      const url = new URL(window.location.href);
      if (url.searchParams.has('lang') && url.searchParams.get('lang') !== lang) {{
        url.searchParams.set('lang', lang);
        history.replaceState(history.state, '', url);
      }}
      document.documentElement.lang = LOCALES[lang];
      const core = await import(new URL({json.dumps(gradio_core_module())}, document.baseURI).href);
      core.changeLocale(LOCALES[lang]);
      return lang;
    }};
    """


def init_js() -> str:
    """Run on page load: choose the language and apply it; returns it (the header switch's value)."""
    return f"""async () => {{
    {_apply_js()}
    let saved = null;
    try {{ saved = localStorage.getItem({json.dumps(COOKIE)}); }} catch (e) {{}}
    const cookie = (document.cookie.match(/(?:^|; ){COOKIE}=([^;]*)/) || [])[1];
    const wanted = norm(new URL(window.location.href).searchParams.get('lang')) || norm(saved) || norm(cookie)
      || (navigator.languages || [navigator.language]).map(norm).find(Boolean);
    return await apply(wanted);
  }}"""


def switch_js() -> str:
    """Run when the header switch changes: apply the chosen language; returns it for the server-side re-render."""
    return f"""async (lang) => {{
    {_apply_js()}
    return await apply(lang);
  }}"""


def build_switch() -> gr.Radio:
    """English / 中文, in the header. Its value is set by :func:`init_js` on load."""
    return gr.Radio(
        choices=[(lang.name, code) for code, lang in LANGUAGES.items()],
        value=DEFAULT,
        label="Language / 语言",  # its accessible name (not shown), the same in every language
        show_label=False,
        container=False,
        elem_id="lang-switch",
        min_width=240,
        scale=0,
    )


THEME_KEY = "tunesmith_theme"  # localStorage: "dark" | "light"; absent = Gradio's choice (the system's)


def theme_init_js() -> str:
    """Run on page load: apply the remembered theme (Gradio itself only follows the system or ``?__theme=``);
    returns whether the page is dark (the header switch's value). A ``?__theme=`` in the URL (Gradio's own
    settings panel puts one there) wins and is remembered."""
    return f"""() => {{
    let saved = null;
    try {{ saved = localStorage.getItem({json.dumps(THEME_KEY)}); }} catch (e) {{}}
    const asked = new URL(window.location.href).searchParams.get('__theme');
    if (asked === 'dark' || asked === 'light') {{
      saved = asked;
      try {{ localStorage.setItem({json.dumps(THEME_KEY)}, asked); }} catch (e) {{}}
    }}
    if (saved === 'dark' || saved === 'light') document.body.classList.toggle('dark', saved === 'dark');
    return document.body.classList.contains('dark');
  }}"""


def theme_toggle_js() -> str:
    """Run when the header's dark-mode switch changes: switch Gradio's ``dark`` class on the page and remember it."""
    return f"""(dark) => {{
    document.body.classList.toggle('dark', !!dark);
    try {{ localStorage.setItem({json.dumps(THEME_KEY)}, dark ? 'dark' : 'light'); }} catch (e) {{}}
    return dark;
  }}"""


def build_theme_switch() -> gr.Checkbox:
    """Dark mode, in the header (Gradio keeps its own in a hidden footer panel). Its value is set on load."""
    return gr.Checkbox(value=False, label=t("shell.dark_mode"), container=False, elem_id="theme-switch",
                       min_width=120, scale=0)


CANCELLED = "__cancelled__"


def confirm_js(key: str) -> str:
    """A ``js=`` for a one-input event that asks the catalog's question ``key`` (in the page's language) first;
    the handler gets :data:`CANCELLED` instead of the input when the user says no."""
    questions = {code: text(key, code) for code in LANGUAGES}
    return f"""(value) => {{
    const QUESTIONS = {json.dumps(questions, ensure_ascii=False)};
    const lang = (document.documentElement.lang || 'en').toLowerCase().split('-')[0];
    return window.confirm((QUESTIONS[lang] || QUESTIONS[{json.dumps(DEFAULT)}]).replace('{{value}}', value || ''))
      ? value : {json.dumps(CANCELLED)};
  }}"""
