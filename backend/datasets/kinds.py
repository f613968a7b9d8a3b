"""Rows of the non-SFT kinds: preference pairs, KTO examples and raw text.

Normalized rows (what the engine reads):
- preference: ``{"messages": [...prompt turns..., {"role": "assistant", "content": CHOSEN}],
  "rejected": {"role": "assistant", "content": REJECTED}}`` (SFT on it trains on the chosen replies)
- kto: ``{"messages": [...], "label": true|false}``
- text: ``{"text": str}``
Each function returns the row (or None) and ``(field, message)`` problems naming the file's own fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backend.datasets.columns import Columns, FieldProblem, json_type
from backend.datasets.turns import (
    Messages,
    alpaca_turns,
    chat_turns,
    check_turns,
    parse_turn,
)

Row = dict[str, Any]
BOOL_TEXT = {"true": True, "false": False}


# ---- conversations in any layout (KTO, SFT) -----------------------------------------------------------------
def conversation(record: Mapping, columns: Columns) -> tuple[Messages | None, list[FieldProblem], str]:
    """(turns, problems, layout) of a record in any chat layout: 'messages'/'sharegpt' (a conversation column),
    TRL's prompt/completion (layout 'messages'), or 'alpaca'."""
    key = columns.messages_key(record)
    if key in record:
        messages, problems = chat_turns(record, columns, key)
        role_key, _ = columns.tags_for(record.get(key), key)
        layout = "sharegpt" if key == "conversations" or role_key == "from" else "messages"
        return messages, problems, layout
    if columns.prompt in record:
        messages, problems = alpaca_turns(record, columns)
        return messages, problems, "alpaca"
    if columns.messages is None and "completion" in record and "prompt" in record:
        messages, problems = _prompt_completion(record, columns)
        return messages, problems, "messages"
    if columns.messages is not None:
        messages, problems = chat_turns(record, columns, key)
        return messages, problems, "messages"
    return None, [("", f"has no conversation: give it a '{key}' list of turns, or '{columns.prompt}' and "
                       f"'{columns.response}' (alpaca), or 'prompt' and 'completion'.")], "messages"


def _prompt_completion(record: Mapping, columns: Columns) -> tuple[Messages | None, list[FieldProblem]]:
    """TRL's unpaired layout: ``prompt`` and ``completion``, each a string or a list of {role, content}."""
    problems: list[FieldProblem] = []
    prompt = _turns_or_text(record, "prompt", "user", columns, problems)
    completion = _turns_or_text(record, "completion", "assistant", columns, problems)
    if problems:
        return None, problems
    return prompt + completion, []


def _turns_or_text(record: Mapping, name: str, role: str, columns: Columns, problems: list[FieldProblem]) -> Messages:
    value = record.get(name)
    if isinstance(value, str):
        if not value.strip():
            problems.append((name, f"'{name}' is empty. Fill it in or drop this record."))
            return []
        return [{"role": role, "content": value}]
    if isinstance(value, list) and value:
        messages, found = chat_turns(record, columns, name, system=False)
        problems.extend(found)
        return messages or []
    problems.append((name, f"'{name}' must be a string or a non-empty list of {{role, content}} messages, got "
                           f"{json_type(value)}."))
    return []


# ---- preference ---------------------------------------------------------------------------------------------
def preference_row(record: Mapping, columns: Columns) -> tuple[Row | None, list[FieldProblem]]:
    """A chosen/rejected pair in any of three layouts (see the README): alpaca fields + chosen/rejected strings;
    a conversation column (the prompt) + chosen/rejected as a message or a string; chosen and rejected each a
    whole conversation (HF/TRL) sharing the prompt, with or without a separate ``prompt`` column."""
    c = columns
    problems: list[FieldProblem] = []
    for name in (c.chosen, c.rejected):
        if record.get(name) is None:
            what = "is missing" if name not in record else "is null"
            problems.append((name, f"required field '{name}' {what}. A preference record needs the prompt, the "
                                   f"chosen reply ('{c.chosen}') and the rejected one ('{c.rejected}')."))
    if problems:
        return None, problems
    if isinstance(record[c.chosen], list) or isinstance(record[c.rejected], list):
        return _preference_lists(record, columns)
    key = c.messages_key(record)
    if key in record:
        prompt, problems = chat_turns(record, columns, key)
        field = key
    else:
        field = c.prompt if c.prompt in record or c.prompt != "instruction" or "prompt" not in record else "prompt"
        prompt, problems = alpaca_turns(record, columns, with_response=False, prompt_field=field)
    chosen = _reply(record[c.chosen], c.chosen, columns, problems)
    rejected = _reply(record[c.rejected], c.rejected, columns, problems)
    if prompt is None or problems:
        return None, problems
    return _pair(prompt, chosen, rejected, field, columns)


def _preference_lists(record: Mapping, columns: Columns) -> tuple[Row | None, list[FieldProblem]]:
    c = columns
    problems: list[FieldProblem] = []
    chosen_turns, found = chat_turns(record, columns, c.chosen, system=False)
    problems += found
    rejected_turns, found = chat_turns(record, columns, c.rejected, system=False)
    problems += found
    prompt: Messages | None = None
    key = c.messages_key(record)
    if "prompt" in record:
        prompt = _turns_or_text(record, "prompt", "user", columns, problems)
    elif key in record:  # a conversation column holds the prompt, chosen/rejected only the replies
        prompt, found = chat_turns(record, columns, key)
        problems += found
    if problems or chosen_turns is None or rejected_turns is None:
        return None, problems
    if prompt is None:  # implicit prompt: everything but the last turn, shared by both
        if chosen_turns[:-1] != rejected_turns[:-1]:
            return None, [(c.rejected, f"'{c.chosen}' and '{c.rejected}' must be the same conversation except for "
                                       "the last (assistant) turn, which holds the two replies.")]
        prompt, chosen_turns, rejected_turns = chosen_turns[:-1], chosen_turns[-1:], rejected_turns[-1:]
    for name, turns in ((c.chosen, chosen_turns), (c.rejected, rejected_turns)):
        if len(turns) != 1:
            return None, [(name, f"'{name}' must hold one assistant reply after the prompt, found {len(turns)} "
                                 "turns.")]
    chosen = _assistant_text(chosen_turns[0], c.chosen, problems)
    rejected = _assistant_text(rejected_turns[0], c.rejected, problems)
    if problems:
        return None, problems
    field = "prompt" if "prompt" in record else key if key in record else c.chosen
    return _pair(prompt, chosen, rejected, field, columns)


def _reply(value: Any, name: str, columns: Columns, problems: list[FieldProblem]) -> str:
    """chosen/rejected given as a string or as one message object (LLaMA-Factory's {"from": "gpt", ...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if columns.role_tag is not None:
            role_key, content_key = columns.role_tag, columns.content_tag or "content"
        else:
            role_key, content_key = ("role", "content") if "role" in value else ("from", "value")
        found: list[FieldProblem] = []
        message = parse_turn(value, name, role_key, content_key, columns.roles, found)
        problems.extend(found)
        return "" if found else _assistant_text(message, name, problems)
    problems.append((name, f"'{name}' must be the reply text or a message object, got {json_type(value)}."))
    return ""


def _assistant_text(message: Mapping | None, name: str, problems: list[FieldProblem]) -> str:
    if message is None:
        return ""
    if message["role"] != "assistant" or "tool_calls" in message:
        kind = "a tool call" if "tool_calls" in message else f"a {message['role']} message"
        problems.append((name, f"'{name}' must be an assistant reply (text), got {kind}."))
        return ""
    return message["content"]


def _pair(prompt: Messages, chosen: str, rejected: str, field: str,
          columns: Columns) -> tuple[Row | None, list[FieldProblem]]:
    c = columns
    problems = check_turns(prompt, field, ends_with="prompt")
    if not chosen.strip():
        problems.append((c.chosen, f"the chosen reply is empty. Fill in '{c.chosen}' or drop this record."))
    if not rejected.strip():
        problems.append((c.rejected, f"the rejected reply is empty. Fill in '{c.rejected}' or drop this record."))
    if chosen.strip() and chosen.strip() == rejected.strip():
        problems.append((c.rejected, f"'{c.chosen}' and '{c.rejected}' are the same text, so the pair teaches "
                                     "nothing. Give a worse rejected reply or drop this record."))
    if problems:
        return None, problems
    return {"messages": prompt + [{"role": "assistant", "content": chosen}],
            "rejected": {"role": "assistant", "content": rejected}}, []


# ---- KTO ----------------------------------------------------------------------------------------------------
def kto_label(value: Any) -> bool | None:
    """True/False, or the text true/false (CSV cells are text); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return BOOL_TEXT.get(value.strip().lower())
    return None


def kto_row(record: Mapping, columns: Columns) -> tuple[Row | None, list[FieldProblem]]:
    key = columns.kto_key(record)
    problems: list[FieldProblem] = []
    label = kto_label(record.get(key))
    if label is None:
        value = record.get(key)
        got = ("is missing" if key not in record else "is null" if value is None
               else f"is {_short(value)} (a {json_type(value)})")
        problems.append((key, f"the KTO label '{key}' {got}; it must be true (a desirable reply) or false "
                              "(an undesirable one)."))
    messages, found, layout = conversation(record, columns)
    problems += found
    if messages is not None and not found:
        problems += check_turns(messages, columns.history if layout == "alpaca" else columns.messages_key(record))
    if problems:
        return None, problems
    return {"messages": messages, "label": label}, []


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 30 else text[:27] + "..."


# ---- raw text -----------------------------------------------------------------------------------------------
def text_row(record: Mapping, columns: Columns) -> tuple[Row | None, list[FieldProblem]]:
    name = columns.text
    value = record.get(name)
    if value is None:
        what = "is missing" if name not in record else "is null"
        return None, [(name, f"required field '{name}' (the document's text) {what}. Add it as a string.")]
    if not isinstance(value, str):
        return None, [(name, f"field '{name}' must be a string (text in quotes), got {json_type(value)}.")]
    if not value.strip():
        return None, [(name, f"the text is empty. Fill in '{name}' or drop this record.")]
    return {"text": value}, []
