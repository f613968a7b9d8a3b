"""Dataset formats: detect which one a record is in and convert it to the normalized row the engine reads.

Formats (``DatasetRecord.format``) and the kind of data each one is (``dataset_kind``):
- alpaca:     ``instruction``, ``output``; optional ``input``, ``system``, ``history`` ([[prompt, answer], ...]) — sft
- messages:   ``messages``: [{"role": "system"|"user"|"assistant"|"tool", "content": str, "tool_calls"?}] — sft
- sharegpt:   ``conversations``: [{"from": "system"|"human"|"gpt"|"function_call"|"observation", "value": str}];
              optional ``system`` — sft
- preference: a prompt (alpaca fields or a conversation) + ``chosen`` and ``rejected`` replies — preference
- kto:        a conversation in any layout above + a boolean ``label`` (or ``kto_tag``) — kto
- text:       ``text`` (raw text for pre-training; also plain .txt uploads) — text
Any conversation may carry tool calls and a ``tools`` column (function specs; a JSON string is parsed).

Normalized rows: sft ``{"messages": [...]}`` (``"tools": [...]`` when given), preference
``{"messages": [...prompt, chosen reply], "rejected": {"role": "assistant", "content": str}}``, kto
``{"messages": [...], "label": bool}``, text ``{"text": str}``. Turns: see backend/datasets/turns.py.

Converters are pure: they return the row (or None) and a list of ``(field, message)`` problems. A ``Columns``
mapping (LLaMA-Factory's ``columns``/``tags``, or an upload's) renames the fields they read; problems then
name the file's own columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from backend.datasets.columns import (
    DEFAULT_COLUMNS,
    ROLE_NAMES,
    Columns,
    FieldProblem,
    json_type,
)
from backend.datasets.kinds import (
    Row,
    conversation,
    kto_label,
    kto_row,
    preference_row,
    text_row,
)
from backend.datasets.turns import (
    Messages,
    alpaca_turns,
    chat_turns,
    check_turns,
    parse_tools,
)

__all__ = [  # this module's own names and the ones it re-exports from columns/turns
    "ACCEPTED_FORMATS_TEXT", "DEFAULT_COLUMNS", "FORMATS", "KINDS", "PLACEHOLDER", "ROLE_NAMES", "Columns",
    "FieldProblem", "Messages", "Row", "alpaca_turns", "chat_turns", "check_turns", "convert_record", "convert_row",
    "dataset_kind", "detect_format", "fill_placeholders", "json_type", "map_row_text", "parse_tools",
]

FORMATS = ("alpaca", "messages", "sharegpt", "preference", "kto", "text")
KINDS = ("sft", "preference", "kto", "text")
ACCEPTED_FORMATS_TEXT = (
    "alpaca (instruction, output; optional input, system, history), "
    "messages ([{role, content}] with roles system/user/assistant/tool), "
    "sharegpt (conversations: [{from, value}] with from = system/human/gpt/function_call/observation), "
    "preference (a prompt as above plus chosen and rejected), "
    "kto (a conversation as above plus a true/false label), "
    "text (a text field, for pre-training)"
)
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def dataset_kind(fmt: str) -> str:
    """'sft' | 'preference' | 'kto' | 'text': what a dataset of format ``fmt`` can train (stage checks)."""
    return fmt if fmt in ("preference", "kto", "text") else "sft"


def detect_format(record: Any, columns: Columns = DEFAULT_COLUMNS) -> str | None:
    """One of FORMATS, read from the keys of one record (with ``columns`` renaming them), or None."""
    if not isinstance(record, Mapping):
        return None
    if columns.chosen in record and columns.rejected in record:
        return "preference"
    key = columns.messages_key(record)
    has_conversation = key in record or columns.prompt in record or (
        columns.messages is None and "prompt" in record and "completion" in record)
    if has_conversation and _has_kto_label(record, columns):
        return "kto"
    if key in record:
        role_key, _ = columns.tags_for(record[key], key)
        return "sharegpt" if key == "conversations" or role_key == "from" else "messages"
    if columns.response in record or (columns.prompt in record and columns.prompt != columns.text):
        return "alpaca"
    if columns.text in record:
        return "text"
    return None


def _has_kto_label(record: Mapping, columns: Columns) -> bool:
    if columns.kto_tag is not None:
        return columns.kto_tag in record
    return "kto_tag" in record or kto_label(record.get("label")) is not None


def convert_row(record: Any, fmt: str, columns: Columns = DEFAULT_COLUMNS) -> tuple[Row | None, list[FieldProblem]]:
    """Normalize one record of format ``fmt`` into its row; None when any problem was found."""
    if not isinstance(record, Mapping):
        return None, [("", f"is a JSON {json_type(record)}, not an object. Each record must be an object "
                           f"with the fields of its format: {ACCEPTED_FORMATS_TEXT}.")]
    if fmt == "text":
        return text_row(record, columns)
    if fmt == "preference":
        row, problems = preference_row(record, columns)
    elif fmt == "kto":
        row, problems = kto_row(record, columns)
    else:
        messages, problems = convert_record(record, fmt, columns)
        row = {"messages": messages}
    tools, tool_problems = parse_tools(record, columns)
    problems = problems + tool_problems
    if problems:
        return None, problems
    if tools:
        row["tools"] = tools
    return row, []


def convert_record(record: Any, fmt: str, columns: Columns = DEFAULT_COLUMNS) -> tuple[Messages | None, list[FieldProblem]]:
    """The conversation of one sft record (alpaca | messages | sharegpt); None when any problem was found."""
    if not isinstance(record, Mapping):
        return None, [("", f"is a JSON {json_type(record)}, not an object. Each record must be an object "
                           f"with the fields of its format: {ACCEPTED_FORMATS_TEXT}.")]
    if fmt == "alpaca":
        messages, problems = alpaca_turns(record, columns)
        field = columns.history
    elif fmt in ("messages", "sharegpt"):
        messages, problems = chat_turns(record, columns)
        field = columns.messages_key(record)
    else:
        messages, problems, layout = conversation(record, columns)
        field = columns.history if layout == "alpaca" else columns.messages_key(record)
    if messages is not None and not problems:
        problems = check_turns(messages, field)
    return (None if problems else messages), problems


def map_row_text(row: Row, transform: Callable[[Messages], Messages]) -> Row:
    """Apply a messages transform (e.g. placeholder filling) to every text of a row: its messages, the
    rejected reply and raw text."""
    out = dict(row)
    if "messages" in out:
        out["messages"] = transform(out["messages"])
    if "rejected" in out:
        out["rejected"] = transform([out["rejected"]])[0]
    if "text" in out:
        out["text"] = transform([{"role": "user", "content": out["text"]}])[0]["content"]
    return out


def fill_placeholders(messages: Messages, values: Mapping[str, str]) -> Messages:
    """Replace ``{{key}}`` in every message's content with ``values[key]``; unknown keys are left as they are."""
    def fill(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    return [{**m, "content": PLACEHOLDER.sub(fill, m["content"])} for m in messages]
