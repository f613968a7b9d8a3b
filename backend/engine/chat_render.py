"""Render conversations with the tokenizer's chat template and find the assistant spans (what carries loss).

We do not rely on ``{% generation %}`` markers (few templates have them). Instead we render growing
prefixes of the conversation and diff the text: the part added by rendering an assistant turn, after the
generation prompt, is that turn's span.

Tool conversations (assistant ``tool_calls``, ``tool`` result turns, a ``tools`` list) render two ways:

- natively, when the tokenizer's template knows tools: a probe conversation rendered with
  ``apply_chat_template(..., tools=[...])`` must show the tool list, the call and the tool result. Calls and
  specs are handed over in the OpenAI layout (``{"type": "function", "function": {...}}``) most templates read.
- otherwise as plain text any template renders (SmolLM2's has no tool support): the tool list joins the system
  prompt as JSON lines with a one-line instruction, each call becomes assistant text
  ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``, and each tool result becomes a user turn
  ``Tool result: ...`` (merged with the user turn next to it, for templates that insist on alternation).

Either way the assistant turns, tool calls included, carry the loss; tool results and the tool list do not.
"""

from __future__ import annotations

import json
import os

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# ChatML layout for tokenizers that lack the <|im_end|> token: each turn ends with the model's own eos token,
# so the model still learns to stop.
CHATML_EOS_TEMPLATE = CHATML_TEMPLATE.replace("'<|im_end|>'", "eos_token")


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template a ChatML one (said on stdout, never silently)."""
    if getattr(tokenizer, "chat_template", None):
        return
    if "<|im_end|>" in tokenizer.get_vocab():
        tokenizer.chat_template = CHATML_TEMPLATE
        print("tokenizer has no chat template: using ChatML", flush=True)
    else:
        tokenizer.chat_template = CHATML_EOS_TEMPLATE
        print("tokenizer has no chat template: using ChatML with the eos token ending each turn", flush=True)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False, tools: list[dict] | None = None) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


TOOLS_INSTRUCTION = ("You can call the tools below. To call one, answer with "
                     '<tool_call>{"name": <tool name>, "arguments": <JSON object>}</tool_call>.')
TOOL_RESULT_PREFIX = "Tool result: "


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def format_tool_call(call: dict) -> str:
    return f"<tool_call>{_json({'name': call['name'], 'arguments': call['arguments']})}</tool_call>"


def plain_tool_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """The conversation with its tools written as text in system/user/assistant turns (see module docstring)."""
    out: list[dict] = []
    tool_turn = False  # does out[-1] hold a tool result
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "assistant" and message.get("tool_calls"):
            calls = [format_tool_call(c) for c in message["tool_calls"]]
            content = "\n".join(([content] if content.strip() else []) + calls)
        is_tool = role == "tool"
        if is_tool:
            role, content = "user", TOOL_RESULT_PREFIX + content
        if role == "user" and out and out[-1]["role"] == "user" and (is_tool or tool_turn):
            out[-1] = {"role": "user", "content": out[-1]["content"] + "\n\n" + content}
            tool_turn = True
        else:
            out.append({"role": role, "content": content})
            tool_turn = is_tool
    if tools:
        listing = TOOLS_INSTRUCTION + "\n<tools>\n" + "\n".join(_json(t) for t in tools) + "\n</tools>"
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + listing}
        else:
            out.insert(0, {"role": "system", "content": listing})
    return out


def _openai_tool(spec: dict) -> dict:
    return spec if "function" in spec else {"type": "function", "function": spec}


def native_tool_messages(messages: list[dict]) -> list[dict]:
    """Calls in the OpenAI layout (``{"type": "function", "function": {"name", "arguments"}}``)."""
    return [{**m, "tool_calls": [{"type": "function", "function": c} for c in m["tool_calls"]]}
            if m.get("tool_calls") else m for m in messages]


_PROBE_TOOL = {"name": "probe_tool_q7x", "description": "probe", "parameters": {"type": "object", "properties": {}}}
_PROBE = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "", "tool_calls": [{"name": "probe_call_k3w", "arguments": {}}]},
    {"role": "tool", "content": "probe_result_z9v"},
    {"role": "assistant", "content": "done"},
]
_native_by_template: dict[str, bool] = {}


def supports_native_tools(tokenizer) -> bool:
    """Does the chat template render a tool list, an assistant tool call and a tool result? (cached)"""
    template = str(getattr(tokenizer, "chat_template", "") or "")
    if template not in _native_by_template:
        try:
            text = render(tokenizer, native_tool_messages(_PROBE), tools=[_openai_tool(_PROBE_TOOL)])
            _native_by_template[template] = all(
                marker in text for marker in ("probe_tool_q7x", "probe_call_k3w", "probe_result_z9v"))
        except Exception:  # noqa: BLE001 - a template that chokes on tools does not support them
            _native_by_template[template] = False
    return _native_by_template[template]


def prepare_tool_conversation(tokenizer, messages: list[dict], tools: list[dict] | None
                              ) -> tuple[list[dict], list[dict] | None]:
    """``(messages, tools)`` to hand to the template: native layout where the template knows tools, else
    plain text turns and no tools argument. Conversations without tools pass through unchanged."""
    has_tools = bool(tools) or any(m["role"] == "tool" or m.get("tool_calls") for m in messages)
    if not has_tools:
        return messages, None
    if supports_native_tools(tokenizer):
        return native_tool_messages(messages), [_openai_tool(t) for t in tools] if tools else None
    return plain_tool_messages(messages, tools), None


def _common_prefix_len(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def find_assistant_spans(tokenizer, messages: list[dict], tools: list[dict] | None = None
                         ) -> tuple[str, list[tuple[int, int]]]:
    """Render the whole conversation; return the text and the ``(start, end)`` character span of each
    assistant turn: its content plus the end-of-turn token, without what the template adds after it."""
    text = render(tokenizer, messages, tools=tools)
    eos = tokenizer.eos_token or ""
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = (_common_prefix_len(render(tokenizer, messages[:i], add_generation_prompt=True, tools=tools), text)
                 if i else 0)
        end = _common_prefix_len(render(tokenizer, messages[: i + 1], tools=tools), text)
        cut = text.rfind(eos, start, end) if eos else -1
        if cut >= 0:
            end = cut + len(eos)
        if end > start:
            spans.append((start, end))
    return text, spans
