"""The dataset preview ("as the model sees it") in-process on the tiny model: segments reassemble the rendered
conversation, exactly the assistant turns are trained, and the length stats match training's truncation."""

from __future__ import annotations

import json
import shutil

import pytest

from backend.engine.chat_render import render
from backend.engine.data import tokenize_conversation
from backend.engine.preview import (
    dropped_reason,
    length_histogram,
    length_stats,
    load_preview_tokenizer,
    preview_dataset,
)

TWO_TURNS = [
    {"role": "user", "content": "What is two plus two?"},
    {"role": "assistant", "content": "Two plus two is four."},
    {"role": "user", "content": "And <b>three</b> & more?"},
    {"role": "assistant", "content": "Three.\nThank you!"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    tok, template = load_preview_tokenizer(tiny_model_dir)
    assert template == "own"
    return tok


def _write(path, conversations):
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in conversations), encoding="utf-8")
    return path


def _rows(n):
    return [[{"role": "user", "content": "Say " + "hello " * i},
             {"role": "assistant", "content": "ok " * (i + 1)}] for i in range(n)]


def test_segments_reassemble_the_rendering_and_train_only_assistant_turns(tiny_model_dir, tokenizer, tmp_path):
    data = _write(tmp_path / "d.jsonl", [TWO_TURNS])
    result = preview_dataset(tiny_model_dir, data, cutoff_len=1024, samples=3, tokenizer=tokenizer)
    (sample,) = result["samples"]
    segments = sample["segments"]
    assert "".join(s["text"] for s in segments) == render(tokenizer, TWO_TURNS)
    trained = [s["text"] for s in segments if s["trained"]]
    assert trained == ["Two plus two is four.<|im_end|>", "Three.\nThank you!<|im_end|>"]
    assert not any(s.get("cut") for s in segments) and sample["truncated"] is False
    example = tokenize_conversation(tokenizer, TWO_TURNS)
    assert sample["num_tokens"] == len(example["input_ids"])
    assert sample["num_trained"] == sum(1 for label in example["labels"] if label != -100)


def test_train_on_prompt_trains_every_token(tiny_model_dir, tokenizer, tmp_path):
    data = _write(tmp_path / "d.jsonl", [TWO_TURNS])
    result = preview_dataset(tiny_model_dir, data, cutoff_len=1024, train_on_prompt=True, tokenizer=tokenizer)
    (sample,) = result["samples"]
    assert [s["trained"] for s in sample["segments"]] == [True]
    assert sample["num_trained"] == sample["num_tokens"]


def test_length_stats_histogram_and_truncation_match_training(tiny_model_dir, tokenizer, tmp_path):
    conversations = _rows(30)
    data = _write(tmp_path / "d.jsonl", conversations)
    lengths = [len(tokenize_conversation(tokenizer, m)["input_ids"]) for m in conversations]
    cutoff = sorted(lengths)[20]  # nine rows are longer (lengths grow with i)
    result = preview_dataset(tiny_model_dir, data, cutoff_len=cutoff, samples=30, tokenizer=tokenizer)
    stats = result["lengths"]
    assert (stats["count"], stats["min"], stats["max"]) == (30, min(lengths), max(lengths))
    assert sum(b["count"] for b in stats["histogram"]) == 30
    assert stats["truncated"] == sum(n > cutoff for n in lengths) == 9
    assert stats["truncated_share"] == pytest.approx(9 / 30, abs=1e-4)
    assert sum(b["count"] for b in stats["histogram"] if b["over_cutoff"]) == 9
    assert 15 <= len(stats["histogram"]) <= 21
    assert result["rows"] == {"total": 30, "counted": 30, "capped": False, "set_aside": 0, "kinds": {"chat": 30}}
    long_sample = result["samples"][-1]
    assert long_sample["truncated"] and long_sample["num_tokens"] == lengths[-1]
    kept = "".join(s["text"] for s in long_sample["segments"] if not s.get("cut"))
    assert kept == tokenizer.decode(tokenize_conversation(tokenizer, conversations[-1])["input_ids"][:cutoff])


def test_dropped_and_longest_truncated_rows_are_named(tiny_model_dir, tokenizer, tmp_path):
    """Issue 12 group 8: "1 sample would be dropped" named no sample; now the row and why."""
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    long_prompt = [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ok"}]
    data = _write(tmp_path / "d.jsonl", [short, long_prompt, short])
    cutoff = 40
    result = preview_dataset(tiny_model_dir, data, cutoff_len=cutoff, samples=0, tokenizer=tokenizer)
    stats = result["lengths"]
    long_tokens = len(tokenize_conversation(tokenizer, long_prompt)["input_ids"])
    assert stats["dropped_rows"] == [{"row": 2, "tokens": long_tokens, "reason": "cutoff"}]
    assert stats["no_trainable_tokens"] == 1 and stats["longest_truncated"] == [{"row": 2, "tokens": long_tokens}]
    assert dropped_reason([-100, -100]) == "no_reply" and dropped_reason([-100, 7]) == "cutoff"


def test_stats_are_capped_on_large_files(tiny_model_dir, tokenizer, tmp_path):
    data = _write(tmp_path / "d.jsonl", _rows(12))
    result = preview_dataset(tiny_model_dir, data, cutoff_len=64, samples=1, max_rows=5, tokenizer=tokenizer)
    assert result["rows"] == {"total": 12, "counted": 5, "capped": True, "set_aside": 0, "kinds": {"chat": 5}}
    assert result["lengths"]["count"] == 5 and len(result["samples"]) == 1


def test_histogram_bins_cover_every_length():
    lengths = [5, 5, 6, 100, 250, 251, 999]
    for cutoff in (4, 5, 100, 998, 999, 5000):
        bins = length_histogram(lengths, cutoff)
        assert sum(b["count"] for b in bins) == len(lengths)
        assert sum(b["count"] for b in bins if b["over_cutoff"]) == sum(n > cutoff for n in lengths)
        assert all(b["to"] - b["from"] == bins[-1]["to"] - bins[-1]["from"] for b in bins[1:])
        assert bins[0]["from"] >= 0 and bins[0]["to"] - bins[0]["from"] <= bins[-1]["to"] - bins[-1]["from"]


def test_histogram_axis_starts_at_zero_at_the_lowest():
    """Issue 12 group 8: the axis started at -123 (the cutoff edge aligned bins below zero)."""
    bins = length_histogram([3, 40, 90, 200, 400], cutoff_len=130)
    assert bins[0]["from"] == 0 and all(b["from"] >= 0 for b in bins)
    assert sum(b["count"] for b in bins) == 5


def test_one_outlier_does_not_squash_every_bar():
    """Issue 12 group 8: 199 samples of 50-250 tokens and one of 20000 drew one full bar and 19 empty ones."""
    lengths = [50 + i for i in range(199)] + [20_000]
    stats = length_stats(lengths, cutoff_len=4096)
    assert stats["longer_than"] == {"tokens": 247, "count": 2}  # p99; 248 and 20000 left out
    bins = stats["histogram"]
    assert sum(b["count"] for b in bins) == 198 and bins[-1]["to"] <= 260
    assert sum(1 for b in bins if b["count"]) >= 15  # the 199 spread over the bars
    assert (stats["max"], stats["truncated"]) == (20_000, 1)
    # the cutoff a little past the 99th percentile: the chart stretches to show its line
    stats = length_stats(lengths, cutoff_len=400)
    assert stats["longer_than"] == {"tokens": 401, "count": 1}
    assert any(b["over_cutoff"] for b in stats["histogram"])
    # no outlier, nothing left out
    assert length_stats([10, 12, 14], cutoff_len=64)["longer_than"] is None


def test_tokenizer_without_template_is_reported_as_chatml_fallback(tiny_model_dir, tmp_path):
    model = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, model)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    result = preview_dataset(model, _write(tmp_path / "d.jsonl", [TWO_TURNS]), cutoff_len=512)
    assert result["tokenizer"]["chat_template"] == "chatml fallback"
    trained = [s["text"] for s in result["samples"][0]["segments"] if s["trained"]]
    assert trained == ["Two plus two is four.<|im_end|>", "Three.\nThank you!<|im_end|>"]
