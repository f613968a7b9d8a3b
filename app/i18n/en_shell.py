"""English: strings of the shell area. Part of :data:`app.i18n.en.MESSAGES` (one part per area keeps each catalog module
small and lets areas grow without touching each other)."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "shell.dark_mode": "Dark mode",
}
