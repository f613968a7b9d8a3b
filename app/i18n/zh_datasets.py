"""简体中文: strings of the Datasets area added after the catalog split. Part of :data:`app.i18n.zh.MESSAGES`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {}
