"""The Ollama ``Modelfile`` of a GGUF export: FROM the GGUF, the chat template as Ollama's Go TEMPLATE, stop
tokens, and the system prompt the run trained with.

The TEMPLATE is derived from the model's own Hugging Face chat template by rendering probe conversations and
reading off, per role, the text around each message (``derive_turn_layout``). That works for every template that
renders a conversation turn by turn (ChatML/SmolLM2/Qwen, Llama 3, ...). It is then checked: the Go template,
rendered by ``backend.exports.gotemplate`` exactly as Ollama would, must give the same prompt as the Jinja template
for several conversations (with and without a system prompt, one and two turns). A template that folds the system
prompt into the first user turn (Mistral, Gemma) fails that check; the Modelfile then has no TEMPLATE and says
why in a comment - Ollama falls back to the chat template embedded in the GGUF - never a wrong TEMPLATE.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from backend.exports import gotemplate
from backend.exports.chat_template import ChatTemplate

_S, _U1, _A1, _U2 = "SYSq7xk", "USRq7xk1", "ASTq7xk", "USRq7xk2"
_SPECIAL = re.compile(r"<[|｜]?[A-Za-z_][^<>\s]*[|｜]?>|\[/?[A-Z_]+\]")

CHECK_CONVERSATIONS: tuple[tuple[dict, ...], ...] = (
    ({"role": "user", "content": "Hi there"},),
    ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}),
    ({"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am a model."},
     {"role": "user", "content": "And who made you?"}),
    ({"role": "system", "content": "You answer in French."}, {"role": "user", "content": "Hello"},
     {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "How are you?"}),
)


class TemplateNotConvertible(ValueError):
    """The chat template does not render turn by turn, so no Ollama TEMPLATE can reproduce it."""


@dataclass(frozen=True)
class TurnLayout:
    """The text around each message: ``prefix[role] + content + suffix[role]``; ``default_system`` is what the
    template writes when the conversation has no system message; ``generation`` opens the assistant's reply."""

    prefix: dict[str, str]
    suffix: dict[str, str]
    default_system: str
    generation: str


def _split(text: str, markers: list[str]) -> list[str]:
    """The text between the markers (which must appear in this order): len(markers) + 1 pieces."""
    pieces, pos = [], 0
    for marker in markers:
        found = text.find(marker, pos)
        if found < 0:
            raise TemplateNotConvertible(f"the chat template drops or rewrites message content ({marker!r} missing)")
        pieces.append(text[pos:found])
        pos = found + len(marker)
    pieces.append(text[pos:])
    return pieces


def _strip_bos(text: str, template: ChatTemplate) -> str:
    # where the tokenizer adds BOS itself, llama.cpp and Ollama add it when tokenizing (tokenizer.ggml.add_bos_token):
    # keeping it in the TEMPLATE would double it
    bos = template.bos_token
    return text[len(bos):] if template.adds_bos and text.startswith(bos) else text


def _without_suffix(text: str, suffix: str, what: str) -> str:
    if not text.endswith(suffix):
        raise TemplateNotConvertible(f"the chat template writes {what} differently depending on the turn")
    return text[:len(text) - len(suffix)] if suffix else text


def derive_turn_layout(template: ChatTemplate) -> TurnLayout:
    def render(messages: list[tuple[str, str]], generation: bool) -> str:
        text = template.render([{"role": r, "content": c} for r, c in messages], add_generation_prompt=generation)
        return _strip_bos(text, template)

    user, assistant, system = ("user", _U1), ("assistant", _A1), ("system", _S)
    lead, suffix_user = _split(render([user], False), [_U1])
    _, between_ua, suffix_assistant = _split(render([user, assistant], False), [_U1, _A1])
    _, _, between_au, _ = _split(render([user, assistant, ("user", _U2)], False), [_U1, _A1, _U2])
    with_gen = _split(render([user], True), [_U1])[1]
    prefix_user = between_au[len(suffix_assistant):] if between_au.startswith(suffix_assistant) else None
    if prefix_user is None or not between_ua.startswith(suffix_user):
        raise TemplateNotConvertible("the chat template's turns do not follow one another as separate blocks")
    prefix_system, between_su, _ = _split(render([system, user], False), [_S, _U1])
    return TurnLayout(
        prefix={"system": prefix_system, "user": prefix_user, "assistant": between_ua[len(suffix_user):]},
        suffix={"system": _without_suffix(between_su, prefix_user, "the system turn"), "user": suffix_user,
                "assistant": suffix_assistant},
        default_system=_without_suffix(lead, prefix_user, "the first user turn"),
        generation=with_gen[len(suffix_user):] if with_gen.startswith(suffix_user) else "",
    )


def go_template(layout: TurnLayout) -> str:
    """The Ollama TEMPLATE for a turn layout (no trim markers: every character is literal)."""
    if any("{{" in piece or '"""' in piece for piece in (*layout.prefix.values(), *layout.suffix.values(),
                                                         layout.default_system, layout.generation)):
        raise TemplateNotConvertible("the chat template's text contains '{{' or '\"\"\"'")
    roles = []
    for i, role in enumerate(("system", "user", "assistant")):
        keyword = "if" if i == 0 else "else if"
        roles.append(f'{{{{ {keyword} eq .Role "{role}" }}}}{layout.prefix[role]}{{{{ .Content }}}}{layout.suffix[role]}')
    default = f"{{{{ if not .System }}}}{layout.default_system}{{{{ end }}}}" if layout.default_system else ""
    return f"{default}{{{{ range .Messages }}}}{''.join(roles)}{{{{ end }}}}{{{{ end }}}}{layout.generation}"


def check_go_template(go: str, template: ChatTemplate) -> None:
    """Raise TemplateNotConvertible unless ``go`` renders every CHECK_CONVERSATIONS prompt as ``template`` does."""
    for conversation in CHECK_CONVERSATIONS:
        messages = [dict(m) for m in conversation]
        expected = _strip_bos(template.render(messages, add_generation_prompt=True), template)
        if gotemplate.render(go, messages) != expected:
            raise TemplateNotConvertible(
                f"the derived Ollama TEMPLATE renders a {len(messages)}-message conversation differently from the "
                "model's chat template (the template is not turn-by-turn, e.g. it folds the system prompt into the "
                "first user turn)")


def ollama_template(template: ChatTemplate) -> str:
    """The checked Go TEMPLATE for ``template``; TemplateNotConvertible says why there is none."""
    go = go_template(derive_turn_layout(template))
    check_go_template(go, template)
    return go


def stop_tokens(template: ChatTemplate, layout: TurnLayout | None) -> list[str]:
    """The end-of-sequence token, the marker that ends an assistant turn and the one that opens a user turn
    (so generation stops instead of writing the next turn itself)."""
    stops = [template.eos_token] if template.eos_token else []
    if layout is not None:
        for text in (layout.suffix["assistant"].strip(), layout.prefix["user"].strip()):
            match = _SPECIAL.match(text) if text else None
            if match:
                stops.append(match.group(0))
    return list(dict.fromkeys(s for s in stops if s))


def training_system_prompt(rows: list[dict]) -> str | None:
    """The system prompt the run trained with: the one a majority of the training conversations start with."""
    prompts = [row["messages"][0]["content"] for row in rows
               if isinstance(row.get("messages"), list) and row["messages"]
               and row["messages"][0].get("role") == "system" and row["messages"][0].get("content")]
    if not prompts:
        return None
    prompt, count = Counter(prompts).most_common(1)[0]
    return prompt if count * 2 > len(rows) else None


def _quoted(text: str) -> str:
    if '"""' in text:
        raise TemplateNotConvertible('the system prompt contains """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def build_modelfile(gguf_name: str, template: ChatTemplate | None, system_prompt: str | None) -> str:
    """The Modelfile text; ``ollama create NAME -f Modelfile`` in the folder holding ``gguf_name``."""
    lines = [f"# Ollama: ollama create <name> -f Modelfile  (in the folder with {gguf_name})", f"FROM ./{gguf_name}"]
    layout = None
    if template is None:
        lines.append("# no TEMPLATE: the model has no chat template; Ollama uses the GGUF's metadata")
    else:
        try:
            layout = derive_turn_layout(template)
            go = go_template(layout)
            check_go_template(go, template)
            lines.append(f'TEMPLATE """{go}"""')
        except TemplateNotConvertible as exc:
            lines.append(f"# no TEMPLATE: {exc}; Ollama uses the chat template embedded in the GGUF")
            layout = None
        for stop in stop_tokens(template, layout):
            lines.append(f'PARAMETER stop "{stop}"')
    if system_prompt:
        try:
            lines.append(f"SYSTEM {_quoted(system_prompt)}")
        except TemplateNotConvertible as exc:
            lines.append(f"# no SYSTEM: {exc}")
    return "\n".join(lines) + "\n"
