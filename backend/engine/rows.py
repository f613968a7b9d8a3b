"""Rows of a normalized dataset file, every kind the registry writes, parsed and checked line by line.

One JSON object per line:

- chat:       ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``
- tools:      chat whose assistant turns may carry ``"tool_calls": [{"name": str, "arguments": {...}}]``, with
              ``{"role": "tool", "content": str}`` turns (the calls' results) and optionally ``"tools": [spec, ...]``
- preference: chat ending with the chosen assistant reply, plus ``"rejected": {"role": "assistant", "content": str}``
- kto:        chat plus ``"label": true|false`` (is the last assistant reply desirable)
- text:       ``{"text": str}`` (raw text for continued pretraining)

What supervised training takes from each kind: the messages (preference rows: the chosen reply; ``rejected``
is not used), KTO rows only when ``label`` is true, and raw text only in stage ``pt``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backend.engine.failures import DataError

ROLES = {"system", "user", "assistant", "tool"}
ROW_HINT = ('each line must be {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str}, ...]} '
            '(optionally with "tools", "rejected" or "label") or {"text": str}; re-register the dataset')


@dataclass(frozen=True)
class Row:
    messages: list[dict]
    tools: list[dict] | None = None
    rejected: dict | None = None
    label: bool | None = None
    text: str | None = None

    @property
    def kind(self) -> str:
        if self.text is not None:
            return "text"
        if self.label is not None:
            return "kto"
        if self.rejected is not None:
            return "preference"
        if self.tools or any(m["role"] == "tool" or m.get("tool_calls") for m in self.messages):
            return "tools"
        return "chat"

    @property
    def trainable(self) -> bool:
        """False for a KTO row labelled undesirable: supervised training must not imitate it."""
        return self.label is not False


def iter_rows(path: str | Path) -> Iterator[tuple[int, Row]]:
    """``(line number, Row)`` for each non-empty line; a malformed line is a DataError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}", "re-register the dataset; its normalized file is missing")
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield number, parse_row(line, f"{path.name} line {number}")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name} is not UTF-8 text ({exc})", "re-register the dataset as UTF-8 JSONL") from exc


def parse_row(line: str, where: str) -> Row:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON ({exc})", ROW_HINT) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a JSON object", ROW_HINT)
    if "messages" not in obj:
        if isinstance(obj.get("text"), str):
            return Row(messages=[], text=obj["text"])
        raise DataError(f"{where}: not a messages object (no 'messages' list, no 'text' string)", ROW_HINT)
    messages = obj["messages"]
    if not isinstance(messages, list):
        raise DataError(f"{where}: 'messages' is {type(messages).__name__}, not a list", ROW_HINT)
    parsed = [_parse_message(m, f"{where}, message {i + 1}") for i, m in enumerate(messages)]
    tools = obj.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise DataError(f"{where}: 'tools' must be a list of function spec objects", ROW_HINT)
    rejected = obj.get("rejected")
    if rejected is not None and not (isinstance(rejected, dict) and isinstance(rejected.get("content"), str)):
        raise DataError(f"{where}: 'rejected' must be {{\"role\": \"assistant\", \"content\": str}}", ROW_HINT)
    label = obj.get("label")
    if label is not None and not isinstance(label, bool):
        raise DataError(f"{where}: 'label' must be true or false, not {label!r}", ROW_HINT)
    return Row(messages=parsed, tools=tools or None, rejected=rejected, label=label)


def _parse_message(message, where: str) -> dict:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        role = message.get("role") if isinstance(message, dict) else None
        raise DataError(f"{where}: role {role!r} is not one of {sorted(ROLES)}", ROW_HINT)
    if not isinstance(message.get("content"), str):
        raise DataError(f"{where}: 'content' must be a string", ROW_HINT)
    out = {"role": message["role"], "content": message["content"]}
    calls = message.get("tool_calls")
    if calls:
        if message["role"] != "assistant" or not isinstance(calls, list):
            raise DataError(f"{where}: only an assistant message may carry a 'tool_calls' list", ROW_HINT)
        out["tool_calls"] = [_parse_call(call, where) for call in calls]
    return out


def _parse_call(call, where: str) -> dict:
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        call = call["function"]  # OpenAI's {"type": "function", "function": {...}} wrapper
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise DataError(f"{where}: a tool call must be {{\"name\": str, \"arguments\": {{...}}}}", ROW_HINT)
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            pass  # keep the string as written
    return {"name": call["name"], "arguments": arguments}


def document_text(row: Row) -> str:
    """A row as a plain-text pretraining document: its text, or its non-empty message contents joined by
    blank lines (tool calls written as in :func:`backend.engine.chat_render.plain_tool_messages`)."""
    if row.text is not None:
        return row.text
    from backend.engine.chat_render import plain_tool_messages

    messages = plain_tool_messages(row.messages, row.tools) if row.kind == "tools" else row.messages
    return "\n\n".join(m["content"] for m in messages if m["content"].strip())
