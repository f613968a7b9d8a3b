"""Chat templates: render conversations with the tokenizer's own template and find the assistant spans.

We do not rely on ``{% generation %}`` markers (few templates have them). Instead we render growing
prefixes of the conversation and diff the text: the part added by rendering an assistant turn, after the
generation prompt, is that turn's span.
"""

from __future__ import annotations

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


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _common_prefix_len(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def find_assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """Render the whole conversation; return the text and the ``(start, end)`` character span of each
    assistant turn: its content plus the end-of-turn token, without what the template adds after it."""
    text = render(tokenizer, messages)
    eos = tokenizer.eos_token or ""
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = _common_prefix_len(render(tokenizer, messages[:i], add_generation_prompt=True), text) if i else 0
        end = _common_prefix_len(render(tokenizer, messages[: i + 1]), text)
        cut = text.rfind(eos, start, end) if eos else -1
        if cut >= 0:
            end = cut + len(eos)
        if end > start:
            spans.append((start, end))
    return text, spans
