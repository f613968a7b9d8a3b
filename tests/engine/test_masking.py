"""Which tokens carry loss: only assistant turns (content + end-of-turn token), or all with train_on_prompt."""

from __future__ import annotations

import pytest

from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.engine.chat_render import CHATML_TEMPLATE, ensure_chat_template
from backend.engine.data import IGNORE_INDEX, DataStats, SourceStats, load_rows, split_examples, tokenize_conversation
from backend.engine.failures import DataError
from backend.engine.model import load_tokenizer
from backend.engine.stages import build_examples
from tests.engine.tiny_runs import write_jsonl

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello there."},
    {"role": "user", "content": "What is two plus two?"},
    {"role": "assistant", "content": "Two plus two is four."},
    {"role": "user", "content": "And the capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def labelled_runs(tokenizer, example) -> list[str]:
    """Decode each contiguous stretch of tokens that carries loss."""
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run) for run in runs]


def test_only_assistant_turns_carry_loss(tokenizer):
    example = tokenize_conversation(tokenizer, CONVERSATION)
    assert labelled_runs(tokenizer, example) == [
        "Hello there.<|im_end|>",
        "Two plus two is four.<|im_end|>",
        "Paris.<|im_end|>",
    ]


def test_token_ids_match_the_tokenizer_own_chat_template(tokenizer):
    example = tokenize_conversation(tokenizer, CONVERSATION)
    reference = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]
    assert example["input_ids"] == reference


def test_train_on_prompt_labels_every_token(tokenizer):
    example = tokenize_conversation(tokenizer, CONVERSATION, train_on_prompt=True)
    assert example["labels"] == example["input_ids"]


def test_default_system_prompt_of_the_template_is_not_trained(tokenizer):
    example = tokenize_conversation(tokenizer, CONVERSATION[1:3])
    text = tokenizer.decode(example["input_ids"])
    assert "You are a helpful assistant." in text  # injected by the ChatML template when no system turn
    assert labelled_runs(tokenizer, example) == ["Hello there.<|im_end|>"]


def test_tokenizer_without_template_falls_back_to_chatml(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    tokenizer.chat_template = None
    ensure_chat_template(tokenizer)
    assert tokenizer.chat_template == CHATML_TEMPLATE
    example = tokenize_conversation(tokenizer, CONVERSATION[1:3])
    assert labelled_runs(tokenizer, example) == ["Hello there.<|im_end|>"]


def _run_on(tmp_path, tiny_model_dir, rows, **config) -> ResolvedRun:
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    return ResolvedRun(
        run_id="masking",
        config=RunConfig(base_model=str(tiny_model_dir), datasets=["d"], **config),
        model_path=str(tiny_model_dir),
        datasets=[DatasetRef(id="d", name="d", path=str(path))],
    )


def test_truncation_and_dropping_examples_without_targets(tmp_path, tiny_model_dir, tokenizer):
    long_prompt = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}
    no_assistant = {"messages": [{"role": "user", "content": "hello"}]}
    short = {"messages": CONVERSATION[1:3]}
    run = _run_on(tmp_path, tiny_model_dir, [long_prompt, no_assistant, short, short], cutoff_len=40, max_samples=3)
    stats = DataStats()
    examples = build_examples(run, tokenizer, stats)[0]
    assert (stats.read, stats.kept, stats.dropped_no_target, stats.truncated) == (3, 1, 2, 1)
    assert all(len(example["input_ids"]) <= 40 for example in examples)


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"text": "no messages"}\n')
    with pytest.raises(DataError, match="bad.jsonl line 2"):
        load_rows(DatasetRef(id="bad", name="bad", path=str(path)), "sft", None, SourceStats(name="bad"))


def test_validation_split_is_deterministic_and_disjoint():
    examples = [{"input_ids": [i]} for i in range(20)]
    train, held_out = split_examples(examples, 0.2, seed=7)
    assert len(held_out) == 4 and len(train) == 16
    assert split_examples(examples, 0.2, seed=7) == (train, held_out)
    assert sorted(e["input_ids"][0] for e in train + held_out) == list(range(20))
