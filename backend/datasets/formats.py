"""Dataset formats: detect which one a record is in and convert it to the normalized form.

Normalized (what the engine reads): ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``
with an optional leading system message, then user/assistant turns that alternate and end with the assistant.

Accepted formats:
- alpaca:   ``instruction``, ``output``; optional ``input``, ``system``, ``history`` ([[prompt, answer], ...])
- messages: ``messages``: [{"role": "system"|"user"|"assistant", "content": str}, ...] (OpenAI chat style)
- sharegpt: ``conversations``: [{"from": "system"|"human"|"gpt", "value": str}, ...]; optional ``system``

Converters are pure: they return the messages (or None) and a list of ``(field, message)`` problems. A
``Columns`` mapping (LLaMA-Factory's ``columns``/``tags`` of a dataset_info.json entry) renames the fields they
read; problems then name the file's own columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

FORMATS = ("alpaca", "messages", "sharegpt")
ACCEPTED_FORMATS_TEXT = (
    "alpaca (instruction, output; optional input, system, history), "
    "messages ([{role, content}] with roles system/user/assistant), "
    "sharegpt (conversations: [{from, value}] with from = system/human/gpt)"
)
ROLE_NAMES = {
    "system": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "bot": "assistant", "chatgpt": "assistant",
}
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")

FieldProblem = tuple[str, str]
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Columns:
    """Which field holds what (alpaca: prompt/query/response/history/system; sharegpt: messages + tags).

    ``messages=None`` means 'conversations' if the record has it, else 'messages'. ``roles`` maps the
    file's role names to ours; roles listed in ``tool_roles`` (observation/function turns) are refused with
    a clear message. The defaults are the field names ``detect_format`` recognizes.
    """

    prompt: str = "instruction"
    query: str = "input"
    response: str = "output"
    history: str = "history"
    system: str = "system"
    messages: str | None = None
    role_tag: str = "from"
    content_tag: str = "value"
    roles: Mapping[str, str] = field(default_factory=lambda: dict(ROLE_NAMES))
    tool_roles: tuple[str, ...] = ()


DEFAULT_COLUMNS = Columns()


def detect_format(record: Any) -> str | None:
    """'alpaca' | 'messages' | 'sharegpt' | 'preference' (chosen/rejected pairs, not trainable here) | None."""
    if not isinstance(record, Mapping):
        return None
    if "chosen" in record and "rejected" in record:
        return "preference"
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        turns = record["messages"]
        first = turns[0] if isinstance(turns, list) and turns else None
        if isinstance(first, Mapping) and "from" in first and "role" not in first:
            return "sharegpt"  # LLaMA-Factory's sharegpt layout with a 'messages' column
        return "messages"
    if "instruction" in record:
        return "alpaca"
    return None


def convert_record(record: Any, fmt: str, columns: Columns = DEFAULT_COLUMNS) -> tuple[Messages | None, list[FieldProblem]]:
    """Normalize one record of a known format; messages is None when any problem was found."""
    if not isinstance(record, Mapping):
        return None, [("", f"is a JSON {json_type(record)}, not an object. Each record must be an object "
                           f"with the fields of its format: {ACCEPTED_FORMATS_TEXT}.")]
    if fmt == "messages" and columns is DEFAULT_COLUMNS:
        messages, problems = chat_to_messages(record)
    elif fmt == "alpaca":
        messages, problems = alpaca_to_messages(record, columns)
    else:
        messages, problems = sharegpt_to_messages(record, columns)
    if messages is not None and not problems:
        problems = check_turns(messages, _turns_field(record, fmt, columns))
    return (None if problems else messages), problems


def alpaca_to_messages(record: Mapping, columns: Columns = DEFAULT_COLUMNS) -> tuple[Messages | None, list[FieldProblem]]:
    """system -> system; history [[q, a], ...] -> earlier turns; instruction + "\\n" + input -> user; output -> assistant."""
    problems: list[FieldProblem] = []
    c = columns
    instruction = _text_field(record, c.prompt, problems, required=True, hint="the prompt")
    extra = _text_field(record, c.query, problems, required=False)
    output = _text_field(record, c.response, problems, required=True, hint="the answer to learn")
    system = _text_field(record, c.system, problems, required=False)
    history = _alpaca_history(record.get(c.history), problems, c.history)
    if problems:
        return None, problems
    prompt = f"{instruction}\n{extra}" if extra else instruction
    if not prompt.strip():
        problems.append((c.prompt, f"the prompt is empty ('{c.prompt}' and '{c.query}' are both blank). "
                                   "Fill in the prompt or drop this record."))
    if not output.strip():
        problems.append((c.response, f"the response is empty. Fill in '{c.response}' or drop this record."))
    messages = [{"role": "system", "content": system}] if system and system.strip() else []
    messages += history
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return (None if problems else messages), problems


def chat_to_messages(record: Mapping) -> tuple[Messages | None, list[FieldProblem]]:
    return _turns(record, "messages", "role", "content")


def sharegpt_to_messages(record: Mapping, columns: Columns = DEFAULT_COLUMNS) -> tuple[Messages | None, list[FieldProblem]]:
    key = _sharegpt_key(record, columns)
    messages, problems = _turns(record, key, columns.role_tag, columns.content_tag, columns.roles, columns.tool_roles)
    system = _text_field(record, columns.system, problems, required=False)
    if messages is None or problems:
        return None, problems
    if system and system.strip() and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages, problems


def check_turns(messages: Messages, field: str) -> list[FieldProblem]:
    """Optional system first, then user/assistant alternating from a user turn, ending with the assistant."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        return [(field, "has no user or assistant turns. Add a user message and the assistant's reply.")]
    expected = "user"
    for index, message in enumerate(body, start=len(messages) - len(body)):
        role = message["role"]
        if role == "system":
            return [(f"{field}[{index}]", "a system message may only be the first message. Merge it into the "
                                          "first one or remove it.")]
        if role != expected:
            return [(f"{field}[{index}]", f"is a {role} turn where a {expected} turn was expected: turns must "
                                          "alternate user, assistant, user, ... starting with the user.")]
        expected = "assistant" if role == "user" else "user"
    if body[-1]["role"] != "assistant":
        return [(field, "the conversation ends with a user turn; it must end with an assistant turn (the "
                        "reply the model learns). Add the reply or drop the last user message.")]
    return []


def fill_placeholders(messages: Messages, values: Mapping[str, str]) -> Messages:
    """Replace ``{{key}}`` in every message's content with ``values[key]``; unknown keys are left as they are."""
    def fill(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    return [{**m, "content": PLACEHOLDER.sub(fill, m["content"])} for m in messages]


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


def _turns_field(record: Mapping, fmt: str, columns: Columns) -> str:
    if fmt == "alpaca":
        return columns.history
    return _sharegpt_key(record, columns) if fmt == "sharegpt" else "messages"


def _sharegpt_key(record: Mapping, columns: Columns) -> str:
    if columns.messages is not None:
        return columns.messages
    return "conversations" if "conversations" in record else "messages"


def _text_field(record: Mapping, name: str, problems: list[FieldProblem], *, required: bool,
                hint: str = "") -> str:
    value = record.get(name)
    if value is None:
        if required:
            what = "is missing" if name not in record else "is null"
            problems.append((name, f"required field '{name}' ({hint}) {what}. Add it as a string."))
        return ""
    if not isinstance(value, str):
        problems.append((name, f"field '{name}' must be a string (text in quotes), got {json_type(value)}."))
        return ""
    return value


def _alpaca_history(history: Any, problems: list[FieldProblem], name: str = "history") -> Messages:
    if history is None or history == []:
        return []
    if not isinstance(history, list):
        problems.append((name, f"field '{name}' must be a list of [prompt, answer] pairs, "
                               f"got {json_type(history)}."))
        return []
    messages: Messages = []
    for index, pair in enumerate(history):
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        if not ok:
            problems.append((f"{name}[{index}]", "each history entry must be a [prompt, answer] pair of two "
                                                 "strings."))
            continue
        if not pair[0].strip() or not pair[1].strip():
            problems.append((f"{name}[{index}]", "has an empty prompt or answer. Fill it in or remove the pair."))
            continue
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return messages


def _turns(record: Mapping, key: str, role_key: str, content_key: str, roles: Mapping[str, str] = ROLE_NAMES,
           tool_roles: tuple[str, ...] = ()) -> tuple[Messages | None, list[FieldProblem]]:
    turns = record.get(key)
    if turns is None:
        return None, [(key, f"required field '{key}' is missing. It must be a list of "
                            f"{{\"{role_key}\": ..., \"{content_key}\": ...}} objects.")]
    if not isinstance(turns, list) or not turns:
        got = "an empty list" if isinstance(turns, list) else f"a {json_type(turns)}"
        return None, [(key, f"field '{key}' must be a non-empty list of messages, got {got}.")]
    problems: list[FieldProblem] = []
    messages: Messages = []
    for index, turn in enumerate(turns):
        where = f"{key}[{index}]"
        if not isinstance(turn, Mapping):
            problems.append((where, f"must be an object with '{role_key}' and '{content_key}', "
                                    f"got {json_type(turn)}."))
            continue
        role, content = turn.get(role_key), turn.get(content_key)
        if not isinstance(role, str):
            what = "is missing" if role is None else f"must be a string, got {json_type(role)}"
            problems.append((f"{where}.{role_key}", f"'{role_key}' {what}."))
            continue
        if role in tool_roles:
            problems.append((f"{where}.{role_key}", f"'{role}' is a tool-call turn; tool calls (function_call/"
                                                    "observation turns) are not supported yet. Drop these records "
                                                    "or this dataset."))
            continue
        if role not in roles:
            if roles is ROLE_NAMES:
                accepted = "system, user, assistant" if role_key == "role" else "system, human, gpt"
            else:
                accepted = ", ".join(roles)
            problems.append((f"{where}.{role_key}", f"unknown role '{role}'. Use one of: {accepted} "
                                                    "(tool/function turns are not supported)."))
            continue
        if not isinstance(content, str):
            what = "is missing" if content is None else f"must be a string, got {json_type(content)}"
            problems.append((f"{where}.{content_key}", f"'{content_key}' {what}."))
            continue
        normalized = roles[role]
        if not content.strip():
            if normalized == "system":
                continue  # an empty system prompt says nothing; drop it
            kind = "prompt" if normalized == "user" else "response"
            problems.append((f"{where}.{content_key}", f"empty {kind}: the {role} message has no text. "
                                                       "Fill it in or drop this record."))
            continue
        messages.append({"role": normalized, "content": content})
    return (None if problems else messages), problems
