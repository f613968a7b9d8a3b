"""Small presentation helpers shared by the pages: times, sizes, states, conversations."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from typing import Any

from app.client import ApiError
from app.i18n import DEFAULT, LANGUAGES, t

_MESSAGES_EN = LANGUAGES[DEFAULT].messages
STATE_ICONS = {
    "queued": "○",
    "running": "●",
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "■",
}


def fmt_time(value: Any) -> str:
    """An API timestamp (ISO 8601 or epoch seconds) as local ``YYYY-MM-DD HH:MM:SS``; '' when absent."""
    if value in (None, ""):
        return ""
    try:
        if isinstance(value, (int, float)):
            moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return str(value)


def fmt_bytes(size: Any) -> str:
    if not isinstance(size, (int, float)):
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def fmt_float(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{value:.{digits}g}"


def fmt_duration(seconds: Any, lang: str = DEFAULT) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return t("time.hm", lang, h=hours, m=f"{minutes:02d}")
    if minutes:
        return t("time.ms", lang, m=minutes, s=f"{secs:02d}")
    return t("time.s", lang, s=secs)


def state_text(state: Any, lang: str = DEFAULT) -> str:
    """A job state in words (``running`` -> 运行中 in zh); an unknown state as it is."""
    state = str(state or "")
    return t(f"state.{state}", lang) if state in STATE_ICONS else state


def state_label(state: Any, lang: str = DEFAULT) -> str:
    state = str(state or "")
    return f"{STATE_ICONS.get(state, '•')} {state_text(state, lang)}".strip()


def error_markdown(exc: Exception, lang: str = DEFAULT) -> str:
    """A readable Markdown block for a failed action (never a traceback). API messages stay in English (they are
    the API's words); a line in ``lang`` says what kind of refusal it is."""
    if isinstance(exc, ApiError):
        status = getattr(exc, "status_code", None)
        key = f"error.status.{status}"
        reason = t(key, lang) if key in _MESSAGES_EN else t("error.status.other", lang)
        return t("error.api", lang, reason=reason, details=exc.as_markdown())
    return t("ui.error", lang, kind=type(exc).__name__, message=html.escape(str(exc)))


def _escape(text: Any) -> str:
    return html.escape(str(text if text is not None else ""))


ROLES = ("system", "user", "assistant", "tool", "text")


def role_label(role: str, lang: str = DEFAULT) -> str:
    """A conversation role in words; a role the studio does not know as it is."""
    return t(f"role.{role}", lang) if role in ROLES else role


def _turn_html(role: str, content: Any, label: str | None = None, extra: str = "") -> str:
    role_class = role if role in ("system", "user", "assistant", "tool", "rejected", "text") else "other"
    return (f'<div class="ts-turn ts-{role_class}"><span class="ts-role">{_escape(label or role)}</span>'
            f'<div class="ts-content">{_escape(content)}{extra}</div></div>')


def _calls_html(calls: Any) -> str:
    """An assistant turn's tool calls as ``name({...arguments})`` lines."""
    if not isinstance(calls, list):
        return ""
    lines = []
    for call in calls:
        if isinstance(call, dict):
            args = json.dumps(call.get("arguments", {}), ensure_ascii=False)
            lines.append(f'<div class="ts-call">→ {_escape(call.get("name", "?"))}({_escape(args)})</div>')
    return "".join(lines)


def conversation_html(rows: list[dict[str, Any]], *, title: str = "", lang: str = DEFAULT) -> str:
    """Render preview rows as readable transcripts: ``{"messages": [...]}`` with tool calls and tool results,
    a preference row's chosen and rejected replies, a KTO row's label and a raw-text row's text."""
    if not rows:
        return f'<div class="ts-empty">{_escape(t("preview.no_rows", lang))}</div>'
    parts = []
    if title:
        parts.append(f'<div class="ts-title">{_escape(title)}</div>')
    for index, row in enumerate(rows, start=1):
        messages = row.get("messages") if isinstance(row, dict) else None
        turns = []
        if isinstance(messages, list):
            pairs = isinstance(row.get("rejected"), dict)
            for number, message in enumerate(messages):
                if not isinstance(message, dict):
                    continue
                role = str(message.get("role", "?"))
                chosen = pairs and number == len(messages) - 1
                label = t("preview.chosen", lang) if chosen else role_label(role, lang)
                turns.append(_turn_html(role, message.get("content", ""), label,
                                        _calls_html(message.get("tool_calls"))))
            if pairs:
                turns.append(_turn_html("rejected", row["rejected"].get("content", ""), t("preview.rejected", lang)))
        elif isinstance(row, dict) and isinstance(row.get("text"), str):
            turns.append(_turn_html("text", row["text"], role_label("text", lang)))
        else:
            turns.append(f'<div class="ts-content">{_escape(row)}</div>')
        head = t("preview.example", lang, index=index)
        if isinstance(row, dict) and isinstance(row.get("label"), bool):
            head += " · " + t("preview.kto_good" if row["label"] else "preview.kto_bad", lang)
        if isinstance(row, dict) and isinstance(row.get("tools"), list):
            names = ", ".join(str(tool.get("name", "?")) for tool in row["tools"] if isinstance(tool, dict))
            head += " · " + t("preview.tools", lang, names=names)
        parts.append(f'<div class="ts-example"><div class="ts-index">{_escape(head)}</div>{"".join(turns)}</div>')
    return "".join(parts)


# Scoped to the gr.HTML component that shows a conversation preview.
CONVERSATION_CSS = """
.ts-title { font-weight: 600; margin: 0 0 8px 0; }
.ts-empty { color: var(--body-text-color-subdued); padding: 12px 0; }
.ts-example { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
              margin-bottom: 10px; background: var(--background-fill-secondary); }
.ts-index { font-size: 12px; color: var(--body-text-color-subdued); margin-bottom: 6px; }
.ts-turn { display: flex; gap: 10px; align-items: flex-start; padding: 4px 0; }
.ts-role { flex: 0 0 84px; box-sizing: border-box; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
           padding: 2px 6px; border-radius: 4px; text-align: center; background: var(--neutral-200);
           color: var(--neutral-800); }
.ts-user .ts-role { background: #dbeafe; color: #1e3a8a; }
.ts-assistant .ts-role { background: #dcfce7; color: #14532d; }
.ts-system .ts-role { background: #fef3c7; color: #78350f; }
.ts-tool .ts-role { background: #ede9fe; color: #4c1d95; }
.ts-rejected .ts-role { background: #fee2e2; color: #7f1d1d; }
.ts-call { font-family: var(--font-mono, monospace); font-size: 12.5px; color: #4c1d95; }
.ts-content { white-space: pre-wrap; word-break: break-word; flex: 1; font-size: 14px; line-height: 1.45;
              max-height: 220px; overflow-y: auto; }
"""
