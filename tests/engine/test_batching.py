"""Token-budget micro-batches: groups stay within the budget, cover every example once per epoch, keep examples
apart in the packed row, and keep the loss a per-token mean over the whole optimizer step."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from backend.config.rundir import read_resolved_run
from backend.engine.batching import group_by_token_budget, pack_dataset
from backend.engine.model import load_model, load_tokenizer
from backend.engine.recipe import train
from backend.engine.stages import build_datasets
from tests.engine.tiny_runs import make_run_dir, read_result


def test_groups_stay_within_the_budget_and_cover_every_example_once():
    rng = random.Random(3)
    lengths = [rng.randint(5, 700) for _ in range(2000)] + [900, 1500]  # two longer than the budget
    groups = group_by_token_budget(lengths, budget=800, seed=7)
    flat = [i for group in groups for i in group]
    assert sorted(flat) == list(range(len(lengths)))  # every example exactly once
    for group in groups:
        total = sum(lengths[i] for i in group)
        assert total <= 800 or (len(group) == 1 and total > 800), (group, total)
    assert {tuple(g) for g in groups if sum(lengths[i] for i in g) > 800} == {(2000,), (2001,)}
    assert len(groups) <= 1.15 * sum(lengths) / 800 + 2  # well filled: about 90 % or better
    assert groups == group_by_token_budget(lengths, budget=800, seed=7)  # deterministic for a seed
    assert groups != group_by_token_budget(lengths, budget=800, seed=8)


def test_packed_group_rows_keep_examples_apart(tiny_model_dir):
    from datasets import Dataset

    tokenizer = load_tokenizer(tiny_model_dir)
    examples = [{"input_ids": list(range(10, 10 + n)), "labels": list(range(10, 10 + n))} for n in (5, 7, 3, 9)]
    packed = pack_dataset(Dataset.from_list(examples), budget=16, seed=0)
    assert sum(len(s) for s in packed["seq_lengths"]) == 4 and all(sum(s) <= 16 for s in packed["seq_lengths"])
    row = packed[0]
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)([row])
    lengths = row["seq_lengths"]
    assert batch["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]
    assert batch["cu_seq_lens_q"].tolist() == [sum(lengths[:i]) for i in range(len(lengths) + 1)]
    starts = batch["cu_seq_lens_q"][:-1].tolist()
    assert all(batch["labels"][0, s] == -100 for s in starts)  # no example predicts from the one before it


@pytest.fixture
def peaky_model_dir(tmp_path, tiny_model_dir):
    """The tiny model with a 40x LM head: per-token losses range widely, so how they are averaged shows."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(40)
    model.save_pretrained(tmp_path / "peaky")
    load_tokenizer(tiny_model_dir).save_pretrained(tmp_path / "peaky")
    return tmp_path / "peaky"


def test_training_with_batch_tokens_is_a_per_token_mean_over_the_step(tmp_path, peaky_model_dir):
    """One optimizer step over every group of the epoch (gradient accumulation = number of groups): the logged loss
    must be the mean over all label tokens, not a mean of the micro-batches' means."""
    budget = 160
    probe = make_run_dir(tmp_path / "probe", peaky_model_dir, compute_type="fp32")
    run = read_resolved_run(probe)
    train_set, _, _ = build_datasets(run, load_tokenizer(peaky_model_dir))
    groups = group_by_token_budget([len(ids) for ids in train_set["input_ids"]], budget, seed=run.config.seed)
    assert 1 < len(groups) < len(train_set)  # several examples share micro-batches

    run_dir = make_run_dir(tmp_path / "run", peaky_model_dir, compute_type="fp32", batch_tokens=budget, max_steps=1,
                           gradient_accumulation_steps=len(groups), learning_rate=1e-3)
    assert train(run_dir) == 0, (run_dir / "result.json").read_text()
    assert read_result(run_dir)["batch_tokens"] == budget
    step = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()][0]
    assert step["epoch"] == pytest.approx(1.0)  # the one step saw the whole epoch, each example once

    # the same losses from the untrained model (LoRA B = 0), example by example
    model = load_model(peaky_model_dir, torch.float32).eval()
    sums, counts = [], []
    with torch.no_grad():
        for example in train_set:
            ids, labels = torch.tensor([example["input_ids"]]), torch.tensor(example["labels"])
            logits = model(input_ids=ids).logits[0, :-1]
            sums.append(F.cross_entropy(logits, labels[1:], ignore_index=-100, reduction="sum").item())
            counts.append(int((labels[1:] != -100).sum()))
    token_mean = sum(sums) / sum(counts)
    group_means = [sum(sums[i] for i in g) / sum(counts[i] for i in g) for g in groups]
    mean_of_means = sum(group_means) / len(group_means)
    assert abs(mean_of_means - token_mean) > 20 * 2e-5 * token_mean  # the two averages really differ here
    assert step["loss"] == pytest.approx(token_mean, rel=2e-5)
