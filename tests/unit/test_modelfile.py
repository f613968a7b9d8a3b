"""The Modelfile's TEMPLATE renders the same prompt as the model's own chat template (rendered by transformers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.exports import gotemplate
from backend.exports.chat_template import read_chat_template
from backend.exports.modelfile import (
    TemplateNotConvertible,
    build_modelfile,
    derive_turn_layout,
    ollama_template,
    stop_tokens,
    training_system_prompt,
)

BUNDLED = Path(__file__).resolve().parents[2] / ".tunesmith" / "models" / "SmolLM2-135M-Instruct"

TWO_TURNS = [
    {"role": "user", "content": "Who are you?"},
    {"role": "assistant", "content": "I am Ada, made by Tunesmith."},
    {"role": "user", "content": "What can you do?"},
]


def _tokenizer_dir(tmp_path: Path, template_name: str | None):
    """A tokenizer saved with ``template_name``'s layout (None: the tokenizer's own): (dir, transformers tokenizer)."""
    from transformers import AutoTokenizer

    from backend.engine.named_chat_templates import NAMED_TEMPLATES
    from tests.tiny_model import build_tiny_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED) if BUNDLED.is_dir() else build_tiny_tokenizer()
    if template_name:
        tokenizer.chat_template = NAMED_TEMPLATES[template_name]
    out = tmp_path / (template_name or "own")
    tokenizer.save_pretrained(out)
    return out, tokenizer


@pytest.mark.parametrize("template_name", [None, "chatml", "qwen2", "llama3"])
@pytest.mark.parametrize("system", [None, "You are Ada, a terse assistant."])
def test_template_renders_like_the_chat_template(tmp_path, template_name, system):
    directory, tokenizer = _tokenizer_dir(tmp_path, template_name)
    template = read_chat_template(directory)
    go = ollama_template(template)
    messages = ([{"role": "system", "content": system}] if system else []) + TWO_TURNS
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if template.adds_bos:
        expected = expected.removeprefix(template.bos_token)
    assert gotemplate.render(go, messages) == expected
    assert "Who are you?" in expected and "What can you do?" in expected


def test_smollm2_modelfile_has_chatml_stops_and_the_default_system_prompt(tmp_path):
    directory, _ = _tokenizer_dir(tmp_path, None)
    text = build_modelfile("model-q8_0.gguf", read_chat_template(directory), "You are Ada.")
    assert text.splitlines()[1] == "FROM ./model-q8_0.gguf"
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "<|im_start|>"' in text
    assert 'SYSTEM """You are Ada."""' in text
    go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    if BUNDLED.is_dir():  # SmolLM2 writes its own system prompt when the conversation has none
        assert gotemplate.render(go, TWO_TURNS).startswith(
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


@pytest.mark.parametrize("template_name", ["mistral", "gemma"])
def test_system_folded_into_user_turn_gets_no_template_and_says_why(tmp_path, template_name):
    directory, _ = _tokenizer_dir(tmp_path, template_name)
    template = read_chat_template(directory)
    with pytest.raises(TemplateNotConvertible):
        ollama_template(template)
    text = build_modelfile("m.gguf", template, None)
    assert "TEMPLATE" not in text.replace("# no TEMPLATE", "")
    assert "# no TEMPLATE: " in text and "embedded in the GGUF" in text


def test_llama3_stops_end_of_turn(tmp_path):
    directory, _ = _tokenizer_dir(tmp_path, "llama3")
    template = read_chat_template(directory)
    assert "<|eot_id|>" in stop_tokens(template, derive_turn_layout(template))


def test_go_renderer_rejects_what_it_cannot_check():
    for bad in ("{{- .System }}", "{{ .Tools }}", "{{ if .System }}x", "{{ range .Messages }}{{ .Foo }}{{ end }}"):
        with pytest.raises(gotemplate.TemplateSyntaxError):
            gotemplate.render(bad, [{"role": "user", "content": "hi"}])
    go = '{{ if .System }}[{{ .System }}]{{ else }}none{{ end }}{{ range .Messages }}{{ if eq .Role "user" }}U:{{ .Content }};{{ else }}O;{{ end }}{{ end }}'
    assert gotemplate.render(go, [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}]) == "[s]O;U:a;"
    assert gotemplate.render(go, [{"role": "user", "content": "a"}]) == "noneU:a;"


def test_training_system_prompt_is_the_majority_one():
    row = lambda system: {"messages": ([{"role": "system", "content": system}] if system else [])  # noqa: E731
                          + [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert training_system_prompt([row("Be Ada."), row("Be Ada."), row(None)]) == "Be Ada."
    assert training_system_prompt([row("Be Ada."), row(None), row(None)]) is None
    assert training_system_prompt([row(None)]) is None
