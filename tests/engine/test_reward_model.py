"""Stage rm end to end: real ``python -m backend.engine train`` subprocesses on the tiny random-init Llama (CPU) with
the hand-made pairs of the dpo tests. After training the reward model ranks the chosen reply above the rejected one
on more pairs than the untrained model (same head initialisation) did, events.jsonl holds accuracy and margin, and
the output loads with AutoModelForSequenceClassification (full) or peft (LoRA: adapters and the score head)."""

from __future__ import annotations

import json

import pytest
import torch

from backend.engine.model import load_tokenizer
from backend.engine.preference import tokenize_pair
from backend.engine.rows import iter_rows
from tests.engine.test_preference_train import events, train
from tests.engine.tiny_runs import read_result, run_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rm_lora(tmp_path_factory, tiny_model_dir):
    return train(tmp_path_factory, tiny_model_dir, "rm_lora", stage="rm", method="lora", lora_rank=4)


@pytest.fixture(scope="module")
def rm_full(tmp_path_factory, tiny_model_dir):
    return train(tmp_path_factory, tiny_model_dir, "rm_full", stage="rm", method="full", learning_rate=1e-3)


def rewards(model, tokenizer, data_path) -> torch.Tensor:
    """Per pair: r(prompt + chosen) - r(prompt + rejected) under ``model``."""
    model.config.pad_token_id = tokenizer.pad_token_id  # the reward is read at the last non-pad token, as in training
    out = []
    with torch.no_grad():
        for _, row in iter_rows(data_path):
            pair = tokenize_pair(tokenizer, row)
            scores = [model(torch.tensor([pair["prompt_ids"] + pair[key]])).logits[0, 0]
                      for key in ("chosen_ids", "rejected_ids")]
            out.append(scores[0] - scores[1])
    return torch.stack(out)


def untrained(tiny_model_dir):
    """The reward model before training: the base with the score head the run started from (seed 42)."""
    from transformers import AutoModelForSequenceClassification, set_seed

    set_seed(42)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).eval()


def check_learned(run_dir, trained, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    before = rewards(untrained(tiny_model_dir), tokenizer, run_dir.parent / "pairs.jsonl")
    after = rewards(trained, tokenizer, run_dir.parent / "pairs.jsonl")
    assert int((after > 0).sum()) > int((before > 0).sum()), (before, after)
    assert (after > 0).all() and after.mean() > before.mean(), (before, after)
    rows = [row for row in events(run_dir) if "loss" in row]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert {"accuracy", "margin"} <= set(rows[-1]) and rows[-1]["margin"] > rows[0]["margin"]
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_rm_lora_ranks_chosen_above_rejected_and_saves_adapter_with_the_head(rm_lora, tiny_model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    result = read_result(rm_lora)
    assert result["status"] == "succeeded" and result["output"] == "adapter"
    tensors = load_file(rm_lora / "adapter" / "adapter_model.safetensors")
    assert any("score" in name for name in tensors) and any("lora_B" in name for name in tensors)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    check_learned(rm_lora, PeftModel.from_pretrained(base, rm_lora / "adapter").eval(), tiny_model_dir)


def test_rm_full_saves_a_sequence_classification_model(rm_full, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    result = read_result(rm_full)
    assert result["status"] == "succeeded" and result["output"] == "model"
    trained = AutoModelForSequenceClassification.from_pretrained(rm_full / "model").eval()
    assert trained.config.num_labels == 1 and trained.config.architectures == ["LlamaForSequenceClassification"]
    check_learned(rm_full, trained, tiny_model_dir)


def test_rm_lora_merges_into_a_sequence_classifier_that_scores_like_the_adapter(rm_lora, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    done = run_engine("merge", "--run-dir", str(rm_lora))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    merged = AutoModelForSequenceClassification.from_pretrained(rm_lora / "merged", dtype=torch.float32).eval()
    assert merged.config.num_labels == 1
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    adapted = PeftModel.from_pretrained(base, rm_lora / "adapter").eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    pairs = rm_lora.parent / "pairs.jsonl"
    assert torch.allclose(rewards(merged, tokenizer, pairs), rewards(adapted, tokenizer, pairs), atol=1e-3)


def test_rm_full_model_resaved_in_another_dtype_stays_a_sequence_classifier(rm_full, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from backend.engine.merge import merge_adapter

    out = merge_adapter(rm_full, dtype="bf16", out_dir=tmp_path / "bf16")
    resaved = AutoModelForSequenceClassification.from_pretrained(out)
    assert resaved.dtype == torch.bfloat16 and resaved.config.num_labels == 1
    original = AutoModelForSequenceClassification.from_pretrained(rm_full / "model")
    assert torch.equal(resaved.score.weight, original.score.weight.to(torch.bfloat16))


def test_evaluate_scores_pairwise_accuracy_of_the_run_and_of_its_untrained_start(rm_lora, tiny_model_dir, tmp_path):
    """``python -m backend.engine evaluate --with-base`` on an rm run: pairwise accuracy and mean margin of the
    reward model and of the model it started from (the base with the seed's head), on the pairs it trained on."""
    from backend.engine.evaluate import evaluate

    pairs = rm_lora.parent / "pairs.jsonl"
    metrics = evaluate(tmp_path / "out", pairs, run_dir=rm_lora, with_base=True)
    before = rewards(untrained(tiny_model_dir), load_tokenizer(tiny_model_dir), pairs)
    assert metrics["pairs"] == metrics["samples"] == metrics["in_training"] == len(before)
    assert metrics["base"]["pairwise_accuracy"] == pytest.approx(float((before > 0).float().mean()))
    assert metrics["base"]["mean_margin"] == pytest.approx(float(before.mean()), abs=1e-4)
    assert metrics["pairwise_accuracy"] > metrics["base"]["pairwise_accuracy"]
    assert metrics["mean_margin"] > metrics["base"]["mean_margin"]
    assert metrics["delta"]["pairwise_accuracy"] == pytest.approx(
        metrics["pairwise_accuracy"] - metrics["base"]["pairwise_accuracy"])
    assert metrics["loss"] is None and metrics["predictions"] == 0  # a reward model scores, it does not generate
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(before) and all(r["in_training"] for r in rows)
    assert [r["base_correct"] for r in rows] == (before > 0).tolist()
    assert sum(r["correct"] for r in rows) / len(rows) == metrics["pairwise_accuracy"]
