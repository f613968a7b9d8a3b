"""简体中文: strings of the runs area. Part of :data:`app.i18n.zh.MESSAGES`; keys as in :mod:`app.i18n.en_runs`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {}
