"""Named chat templates for models whose tokenizer has none, or a wrong one (``RunConfig.chat_template``).

``auto`` keeps the tokenizer's own template (ChatML when it has none, see ``chat_render.ensure_chat_template``);
a name replaces it with one of the layouts below, written here as Jinja like a tokenizer's own. The template is
saved with the adapter/model's tokenizer, so chat, evaluation and export use the layout the model was trained on.

Every layout renders a conversation as the concatenation of its turns (a prefix of the conversation renders as
a prefix of the text), which is what our loss masking needs (``chat_render.find_assistant_spans``). System
prompts go where each family puts them: a turn of their own (chatml, qwen2, llama3), the first user turn
(mistral, gemma), or a preamble (alpaca). When an end-of-turn marker is not a single token of the tokenizer
(e.g. ``<|eot_id|>`` in a tokenizer that never saw Llama 3), the run log says so: the model then learns the
marker as ordinary text.
"""

from __future__ import annotations

_CHATML_TURNS = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# the first user turn carries the system prompt (families without a system role)
_SYSTEM_INTO_FIRST_USER = (
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
)

NAMED_TEMPLATES: dict[str, str] = {
    "chatml": _CHATML_TURNS,
    "qwen2": (
        "{% if not messages or messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" + _CHATML_TURNS
    ),
    "llama3": (
        "{{ bos_token or '' }}"
        "{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    "mistral": (
        _SYSTEM_INTO_FIRST_USER + "{{ bos_token or '' }}"
        "{% for message in turns %}"
        "{% if message['role'] == 'user' %}"
        "{{ '[INST] ' + (system + '\n\n' if loop.first and system else '') + message['content'] + ' [/INST]' }}"
        "{% else %}{{ message['content'] + (eos_token or '') }}{% endif %}"
        "{% endfor %}"
    ),
    "gemma": (
        _SYSTEM_INTO_FIRST_USER + "{{ bos_token or '' }}"
        "{% for message in turns %}"
        "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else 'user') + '\n' }}"
        "{{ (system + '\n\n' if loop.first and system and message['role'] == 'user' else '') + message['content'] }}"
        "{{ '<end_of_turn>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
    ),
    "alpaca": (
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n### Response:\n' }}"
        "{% else %}{{ message['content'] + (eos_token or '') + '\n\n' }}{% endif %}"
        "{% endfor %}"
    ),
}

END_MARKERS = {"chatml": "<|im_end|>", "qwen2": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>"}


def apply_chat_template_name(tokenizer, name: str) -> None:
    """Give ``tokenizer`` the named layout (``auto``: leave it as loaded); say on stdout what was done."""
    if name == "auto":
        return
    if name not in NAMED_TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; choose one of: auto, {', '.join(NAMED_TEMPLATES)}")
    tokenizer.chat_template = NAMED_TEMPLATES[name]
    marker = END_MARKERS.get(name)
    note = ""
    if marker and marker not in tokenizer.get_vocab():
        note = f" ({marker} is not a token of this tokenizer: the model learns it as text)"
    print(f"chat template: {name}{note}", flush=True)
