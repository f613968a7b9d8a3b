"""Named chat templates (RunConfig.chat_template): each layout masks exactly the assistant turns, renders a
conversation's prefixes as prefixes of its text, and is saved with the trained tokenizer."""

from __future__ import annotations

import typing

import pytest

from backend.config.schema import ChatTemplate
from backend.engine.chat_render import render
from backend.engine.data import IGNORE_INDEX, tokenize_conversation
from backend.engine.model import load_tokenizer
from backend.engine.named_chat_templates import NAMED_TEMPLATES, apply_chat_template_name
from backend.engine.recipe import train
from tests.engine.tiny_runs import make_run_dir

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2 plus 2?"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You are welcome."},
]


def test_every_schema_choice_has_a_template():
    assert set(typing.get_args(ChatTemplate)) == {"auto", *NAMED_TEMPLATES}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.mark.parametrize("name", list(NAMED_TEMPLATES))
def test_named_template_trains_exactly_the_assistant_turns(tokenizer, name, capsys):
    apply_chat_template_name(tokenizer, name)
    assert f"chat template: {name}" in capsys.readouterr().out
    full = render(tokenizer, CONVERSATION)
    for k in range(1, len(CONVERSATION)):
        assert full.startswith(render(tokenizer, CONVERSATION[:k]))  # prefixes render as prefixes
    assert "Be brief." in full and all(m["content"] in full for m in CONVERSATION)

    example = tokenize_conversation(tokenizer, CONVERSATION)
    trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
    text = tokenizer.decode(trained)
    for reply in ("Hello!", "It is 4.", "You are welcome."):
        assert reply in text
    for prompt in ("Be brief.", "Hi there", "What is 2 plus 2?", "Thanks"):
        assert prompt not in text


def test_a_run_with_a_named_template_saves_it_with_the_adapter(tmp_path, tiny_model_dir, capsys):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, max_steps=1, chat_template="llama3", save_steps=None,
                           cutoff_len=256)  # the llama3 markers are plain text to the tiny tokenizer
    assert train(run_dir) == 0
    assert "chat template: llama3" in capsys.readouterr().out
    saved = load_tokenizer(run_dir / "adapter")
    assert saved.chat_template == NAMED_TEMPLATES["llama3"]
    assert "<|start_header_id|>assistant<|end_header_id|>" in render(saved, CONVERSATION[:2], add_generation_prompt=True)


def test_unknown_template_name_is_refused(tokenizer):
    with pytest.raises(ValueError, match="unknown chat template 'vicuna'"):
        apply_chat_template_name(tokenizer, "vicuna")
