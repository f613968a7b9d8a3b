"""简体中文: strings of the shell area. Part of :data:`app.i18n.zh.MESSAGES`; keys as in :mod:`app.i18n.en_shell`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "shell.dark_mode": "深色模式",
}
