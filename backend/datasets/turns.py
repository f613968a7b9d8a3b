"""Conversations: read the turns of a record (chat or alpaca layout, with tool calls) and check their order.

Normalized turns are ``{"role": "system"|"user"|"assistant", "content": str}``, an assistant turn that calls
tools ``{"role": "assistant", "content": str (may be ""), "tool_calls": [{"name": str, "arguments": {...}}]}``
and a tool's result ``{"role": "tool", "content": str}``. Functions return the turns (or None) and a list of
``(field, message)`` problems naming the file's own fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backend.datasets.columns import ROLE_NAMES, Columns, FieldProblem, json_type

Messages = list[dict[str, Any]]


# ---- chat layouts (messages / conversations) -----------------------------------------------------------
def chat_turns(record: Mapping, columns: Columns, key: str | None = None, *,
               system: bool = True) -> tuple[Messages | None, list[FieldProblem]]:
    """The turns of the conversation column (``key`` or the Columns' one), roles mapped, tool calls parsed;
    with ``system``, a top-level system column becomes the first turn when the turns have none."""
    key = key or columns.messages_key(record)
    turns = record.get(key)
    role_key, content_key = columns.tags_for(turns, key)
    if turns is None:
        return None, [(key, f"required field '{key}' is missing. It must be a list of "
                            f"{{\"{role_key}\": ..., \"{content_key}\": ...}} objects.")]
    if not isinstance(turns, list) or not turns:
        got = "an empty list" if isinstance(turns, list) else f"a {json_type(turns)}"
        return None, [(key, f"field '{key}' must be a non-empty list of messages, got {got}.")]
    problems: list[FieldProblem] = []
    messages: Messages = []
    for index, turn in enumerate(turns):
        message = parse_turn(turn, f"{key}[{index}]", role_key, content_key, columns.roles, problems)
        if message is not None:
            messages.append(message)
    prompt = text_field(record, columns.system, problems, required=False) if system else ""
    if problems:
        return None, problems
    if prompt.strip() and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": prompt})
    return messages, problems


def parse_turn(turn: Any, where: str, role_key: str, content_key: str, roles: Mapping[str, str],
               problems: list[FieldProblem]) -> dict | None:
    """One turn normalized, or None (a problem was added, or it is an empty system message to drop)."""
    if not isinstance(turn, Mapping):
        problems.append((where, f"must be an object with '{role_key}' and '{content_key}', got {json_type(turn)}."))
        return None
    role, content = turn.get(role_key), turn.get(content_key)
    if not isinstance(role, str):
        what = "is missing" if role is None else f"must be a string, got {json_type(role)}"
        problems.append((f"{where}.{role_key}", f"'{role_key}' {what}."))
        return None
    if role not in roles:
        if roles is ROLE_NAMES or roles == ROLE_NAMES:
            accepted = ("system, user, assistant, tool" if role_key == "role"
                        else "system, human, gpt, function_call, observation")
        else:
            accepted = ", ".join(roles)
        problems.append((f"{where}.{role_key}", f"unknown role '{role}'. Use one of: {accepted}."))
        return None
    normalized = roles[role]
    if normalized == "tool_call":
        calls = parse_tool_calls_text(content, f"{where}.{content_key}", problems)
        return None if calls is None else {"role": "assistant", "content": "", "tool_calls": calls}
    calls = None
    if normalized == "assistant" and turn.get("tool_calls"):
        calls = parse_tool_calls(turn["tool_calls"], f"{where}.tool_calls", problems)
        if calls is None:
            return None
        if content is None:
            content = ""
    if normalized == "tool" and isinstance(content, (Mapping, list)):
        content = json.dumps(content, ensure_ascii=False)  # a structured tool result, kept as JSON text
    if not isinstance(content, str):
        what = "is missing" if content is None else f"must be a string, got {json_type(content)}"
        problems.append((f"{where}.{content_key}", f"'{content_key}' {what}."))
        return None
    if not content.strip() and not calls and normalized != "tool":
        if normalized == "system":
            return None  # an empty system prompt says nothing; drop it
        kind = "prompt" if normalized == "user" else "response"
        problems.append((f"{where}.{content_key}", f"empty {kind}: the {role} message has no text. "
                                                   "Fill it in or drop this record."))
        return None
    message = {"role": normalized, "content": content}
    if calls:
        message["tool_calls"] = calls
    return message


def parse_tool_calls_text(content: Any, where: str, problems: list[FieldProblem]) -> list[dict] | None:
    """A sharegpt function_call turn's text: JSON {"name", "arguments"} or a list of them."""
    hint = 'it must hold JSON like {"name": "get_weather", "arguments": {"city": "Paris"}} (or a list of them)'
    if not isinstance(content, str):
        problems.append((where, f"the function_call turn must be a string; {hint}, got {json_type(content)}."))
        return None
    try:
        value = json.loads(content)
    except json.JSONDecodeError as err:
        problems.append((where, f"the function_call turn is not valid JSON ({err.msg}, column {err.colno}); {hint}."))
        return None
    return parse_tool_calls(value, where, problems)


def parse_tool_calls(value: Any, where: str, problems: list[FieldProblem]) -> list[dict] | None:
    """Tool calls as [{"name": str, "arguments": {...}}]; OpenAI's {"function": {"name", "arguments": "<json>"}}
    and bare {"name", "arguments"} objects are both accepted."""
    calls = value if isinstance(value, list) else [value]
    if not calls:
        problems.append((where, "lists no tool calls. Drop the empty list or add a call."))
        return None
    out = []
    for index, call in enumerate(calls):
        at = f"{where}[{index}]" if isinstance(value, list) else where
        if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
            call = call["function"]
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str) or not call["name"].strip():
            problems.append((at, 'a tool call must be an object with a "name" (string) and "arguments" (object), '
                                 f"got {_shown(call)}."))
            return None
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as err:
                problems.append((at, f"the arguments of '{call['name']}' are not valid JSON ({err.msg}). They must "
                                     "be a JSON object of parameter values."))
                return None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            problems.append((at, f"the arguments of '{call['name']}' must be an object of parameter values, got "
                                 f"{json_type(arguments)}."))
            return None
        out.append({"name": call["name"], "arguments": dict(arguments)})
    return out


def parse_tools(record: Mapping, columns: Columns) -> tuple[list[dict] | None, list[FieldProblem]]:
    """The tools column: a list of function specs (LLaMA-Factory stores it as a JSON string). None if absent."""
    name = columns.tools
    value = record.get(name)
    if value is None or (isinstance(value, (str, list)) and not value):
        return None, []
    if isinstance(value, str):
        if not value.strip():
            return None, []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            return None, [(name, f"'{name}' is not valid JSON ({err.msg}, column {err.colno}). It must be a JSON "
                                 'list of function specs like [{"name": "get_weather", "description": "...", '
                                 '"parameters": {...}}].')]
    specs = value if isinstance(value, list) else [value]
    tools = []
    for index, spec in enumerate(specs):
        if isinstance(spec, Mapping) and spec.get("type") == "function" and isinstance(spec.get("function"), Mapping):
            spec = spec["function"]  # OpenAI's {"type": "function", "function": {...}}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
            return None, [(f"{name}[{index}]", f"each tool must be a function spec object with a \"name\", got "
                                               f"{_shown(spec)}.")]
        tools.append(dict(spec))
    return (tools or None), []


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- alpaca layout ------------------------------------------------------------------------------------
def alpaca_turns(record: Mapping, columns: Columns, *, with_response: bool = True,
                 prompt_field: str | None = None) -> tuple[Messages | None, list[FieldProblem]]:
    """system -> system; history [[q, a], ...] -> earlier turns; prompt + "\\n" + query -> user; response ->
    assistant (left out when ``with_response`` is False: preference prompts)."""
    problems: list[FieldProblem] = []
    c = columns
    prompt_name = prompt_field or c.prompt
    instruction = text_field(record, prompt_name, problems, required=True, hint="the prompt")
    extra = text_field(record, c.query, problems, required=False)
    output = text_field(record, c.response, problems, required=True, hint="the answer to learn") if with_response else ""
    system = text_field(record, c.system, problems, required=False)
    history = _alpaca_history(record.get(c.history), problems, c.history)
    if problems:
        return None, problems
    prompt = f"{instruction}\n{extra}" if extra else instruction
    if not prompt.strip():
        problems.append((prompt_name, f"the prompt is empty ('{prompt_name}' and '{c.query}' are both blank). "
                                      "Fill in the prompt or drop this record."))
    if with_response and not output.strip():
        problems.append((c.response, f"the response is empty. Fill in '{c.response}' or drop this record."))
    messages: Messages = [{"role": "system", "content": system}] if system and system.strip() else []
    messages += history
    messages.append({"role": "user", "content": prompt})
    if with_response:
        messages.append({"role": "assistant", "content": output})
    return (None if problems else messages), problems


def text_field(record: Mapping, name: str, problems: list[FieldProblem], *, required: bool, hint: str = "") -> str:
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


def _alpaca_history(history: Any, problems: list[FieldProblem], name: str) -> Messages:
    if history is None or history == []:
        return []
    if not isinstance(history, list):
        problems.append((name, f"field '{name}' must be a list of [prompt, answer] pairs, got {json_type(history)}."))
        return []
    messages: Messages = []
    for index, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            problems.append((f"{name}[{index}]", "each history entry must be a [prompt, answer] pair of two strings."))
            continue
        if not pair[0].strip() or not pair[1].strip():
            problems.append((f"{name}[{index}]", "has an empty prompt or answer. Fill it in or remove the pair."))
            continue
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return messages


# ---- order of turns -------------------------------------------------------------------------------------
def check_turns(messages: Messages, field: str, *, ends_with: str = "assistant") -> list[FieldProblem]:
    """Optional system first, then user -> assistant -> user ..., where an assistant turn with tool_calls is
    followed by one or more tool turns and then the assistant again. ``ends_with`` "assistant": the last turn
    is the assistant's (a reply or a tool call); "prompt": a user or tool turn (a preference prompt, whose
    reply is the chosen/rejected pair)."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        return [(field, "has no user or assistant turns. Add a user message and the assistant's reply.")]
    previous = None
    for index, message in enumerate(body, start=len(messages) - len(body)):
        role, where = message["role"], f"{field}[{index}]"
        if role == "system":
            return [(where, "a system message may only be the first message. Merge it into the first one or "
                            "remove it.")]
        calls = previous is not None and previous["role"] == "assistant" and "tool_calls" in previous
        if role == "tool" and not (calls or (previous or {}).get("role") == "tool"):
            return [(where, "a tool turn (a tool's result) must follow an assistant turn with tool_calls (or "
                            "another tool turn). Add the assistant's tool call before it or drop it.")]
        if calls and role != "tool":
            return [(where, f"is a {role} turn right after an assistant tool call: the tool's result (a tool turn) "
                            "must come next.")]
        if role == "tool":
            previous = message
            continue
        expected = "user" if previous is None or previous["role"] == "assistant" else "assistant"
        if role != expected:
            return [(where, f"is a {role} turn where a {expected} turn was expected: turns must alternate user, "
                            "assistant, user, ... starting with the user.")]
        previous = message
    last = body[-1]["role"]
    if ends_with == "prompt" and last == "assistant":
        return [(field, "the prompt ends with an assistant turn; it must end with the user turn that the chosen "
                        "and rejected replies answer.")]
    if ends_with == "assistant" and last != "assistant":
        what = "a user turn" if last == "user" else "a tool result"
        return [(field, f"the conversation ends with {what}; it must end with an assistant turn (the reply the "
                        "model learns). Add the reply or drop the last message.")]
    return []
