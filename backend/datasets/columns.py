"""Which field of a record holds what: the ``Columns`` mapping and how a user (or LLaMA-Factory) sets it.

``Columns`` carries the field names the converters read (alpaca prompt/query/response/history/system, the
conversation column, chosen/rejected, the KTO label, tools, text) and the role/content tags of conversation
turns. ``None`` means "recognize it from the record": the conversation column is ``conversations`` or
``messages``; turns use ``role``/``content`` or ``from``/``value``; the KTO label is ``label`` or ``kto_tag``.

``columns_from_mapping`` builds one from a LLaMA-Factory style ``columns``/``tags`` pair (a dataset_info.json
entry, or the ``columns``/``tags`` fields of an upload) and refuses unknown keys with a message naming them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.config.dataset_mapping import COLUMN_KEYS, TAG_KEYS
from backend.datasets.errors import DatasetValidationError

# Our normalized roles plus two internal ones: "tool_call" (a sharegpt function_call turn: an assistant turn
# that calls tools) and "tool" (a tool's result).
ROLE_NAMES = {
    "system": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "bot": "assistant", "chatgpt": "assistant",
    "function_call": "tool_call",
    "tool": "tool", "observation": "tool", "function": "tool",
}
MEDIA_KEYS = ("images", "videos", "audios")

FieldProblem = tuple[str, str]


@dataclass(frozen=True)
class Columns:
    """Field names (see the module docstring). ``explicit`` lists the file columns a mapping named on
    purpose: validation reports each one that no record has (a typo in the mapping)."""

    prompt: str = "instruction"
    query: str = "input"
    response: str = "output"
    history: str = "history"
    system: str = "system"
    messages: str | None = None
    chosen: str = "chosen"
    rejected: str = "rejected"
    kto_tag: str | None = None
    tools: str = "tools"
    text: str = "text"
    role_tag: str | None = None
    content_tag: str | None = None
    roles: Mapping[str, str] = field(default_factory=lambda: dict(ROLE_NAMES))
    explicit: tuple[tuple[str, str], ...] = ()  # (our key, the file's column)

    def messages_key(self, record: Mapping) -> str:
        if self.messages is not None:
            return self.messages
        return "conversations" if "conversations" in record else "messages"

    def kto_key(self, record: Mapping) -> str:
        if self.kto_tag is not None:
            return self.kto_tag
        return "kto_tag" if "kto_tag" in record else "label"

    def tags_for(self, turns: Any, key: str) -> tuple[str, str]:
        """(role tag, content tag) of a conversation: the given ones, else sniffed from its first turn."""
        if self.role_tag is not None:
            return self.role_tag, self.content_tag or "content"
        first = turns[0] if isinstance(turns, list) and turns else None
        if isinstance(first, Mapping) and "role" not in first and "from" in first:
            return "from", self.content_tag or "value"
        if isinstance(first, Mapping) and "role" in first:
            return "role", self.content_tag or "content"
        return ("from", self.content_tag or "value") if key == "conversations" else ("role",
                                                                                     self.content_tag or "content")


DEFAULT_COLUMNS = Columns()


def columns_from_mapping(columns: Mapping[str, Any] | None, tags: Mapping[str, Any] | None = None, *,
                         formatting: str | None = None, llamafactory: bool = False,
                         where: str = "columns") -> Columns:
    """A Columns from LLaMA-Factory's ``columns`` and ``tags``; DatasetValidationError naming bad keys/values.

    ``llamafactory`` applies LLaMA-Factory's defaults for ``formatting`` (sharegpt: ``conversations`` with
    from/value and human/gpt/function_call/observation tags); otherwise unnamed fields are recognized per
    record. With ``formatting="text"`` LLaMA-Factory's ``prompt`` names the text column.
    """
    columns, tags = dict(columns or {}), dict(tags or {})
    _check_keys(columns, COLUMN_KEYS + MEDIA_KEYS, where, "LLaMA-Factory's columns keys plus 'text'")
    _check_keys(tags, TAG_KEYS, "tags", "LLaMA-Factory's tags keys")
    media = [k for k in MEDIA_KEYS if k in columns]
    if media:
        raise _mapping_error(where, media[0], f"'{media[0]}' columns (images, videos, audios) are not supported: "
                                              "only text datasets can be registered.")
    sharegpt = llamafactory and formatting == "sharegpt"
    kwargs: dict[str, Any] = {}
    names = {"prompt": "prompt", "query": "query", "response": "response", "history": "history",
             "system": "system", "messages": "messages", "chosen": "chosen", "rejected": "rejected",
             "kto_tag": "kto_tag", "tools": "tools", "text": "text"}
    for key, attr in names.items():
        if key in columns:
            kwargs[attr] = columns[key]
    if formatting == "text" and "text" not in columns and "prompt" in columns:
        kwargs["text"] = columns["prompt"]
    if sharegpt:
        kwargs.setdefault("messages", "conversations")
        kwargs["role_tag"] = tags.get("role_tag", "from")
        kwargs["content_tag"] = tags.get("content_tag", "value")
    elif "role_tag" in tags or "content_tag" in tags:
        kwargs["role_tag"] = tags.get("role_tag", "role")
        kwargs["content_tag"] = tags.get("content_tag", "content" if kwargs["role_tag"] == "role" else "value")
    role_tags = {k: v for k, v in tags.items() if k not in ("role_tag", "content_tag")}
    if sharegpt or role_tags:
        defaults = {"user_tag": "human", "assistant_tag": "gpt", "system_tag": "system",
                    "function_tag": "function_call", "observation_tag": "observation"}
        if not sharegpt and kwargs.get("role_tag", "role") == "role":
            defaults.update(user_tag="user", assistant_tag="assistant", function_tag="function_call",
                            observation_tag="tool")
        ours = {"user_tag": "user", "assistant_tag": "assistant", "system_tag": "system",
                "function_tag": "tool_call", "observation_tag": "tool"}
        kwargs["roles"] = {role_tags.get(key, defaults[key]): ours[key] for key in ours}
    explicit = tuple((key, value) for key, value in columns.items() if key in names)
    return Columns(**kwargs, explicit=explicit)


def mapping_from_json(text: str | None, where: str) -> dict | None:
    """A form field holding a JSON object (None when empty); DatasetValidationError naming the field."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        value, problem = None, f"not valid JSON ({err.msg}, column {err.colno})"
    else:
        problem = None if isinstance(value, dict) else f"a JSON {json_type(value)}, not an object"
    if problem is not None:
        raise _mapping_error(where, None, f"'{where}' is {problem}; send an object like "
                                          '{"prompt": "question", "response": "answer"}.')
    return value


def _check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...], where: str, what: str) -> None:
    for key, value in mapping.items():
        if key not in allowed:
            raise _mapping_error(where, key, f"unknown key '{key}'. Use {what}: {', '.join(allowed)}.")
        if not isinstance(value, str) or not value.strip():
            raise _mapping_error(where, key, f"'{key}' must name a field (a non-empty string), got "
                                             f"{json_type(value)}.")


def _mapping_error(where: str, key: str | None, message: str) -> DatasetValidationError:
    return DatasetValidationError(f"{where}: {message}", [{"location": where, "field": key, "message": message}], 1)


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type (for messages users can act on)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__
