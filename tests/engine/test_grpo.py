"""Stage grpo end to end: a real ``python -m backend.engine train`` subprocess on the tiny random-init Llama (CPU)
with a regex reward (the reply starts with a lowercase letter). The reward only depends on the first sampled
token, so its expected value under a model is exact: the probability mass of the first-token candidates that
start with [a-z]. After training that expected reward is higher than the base model's; events.jsonl holds the
mean reward, the function's own mean and the reply length per step. The reward functions themselves are pure and
checked on their own."""

from __future__ import annotations

import re

import pytest
import torch

from backend.config.grpo import GrpoConfig
from backend.engine.model import load_tokenizer
from backend.engine.rewards import build_reward_functions
from backend.engine.rows import Row
from backend.engine.stages.grpo import prompt_and_reference
from tests.engine.test_preference_train import events
from tests.engine.tiny_runs import conversations, make_run_dir, read_result, run_engine

PATTERN = "^[a-z]"


def test_builtin_rewards_score_replies():
    grpo = GrpoConfig(rewards=[{"name": "exact_match"}, {"name": "contains", "weight": 0.5},
                               {"name": "regex", "pattern": r"^\d+$"}, {"name": "regex", "pattern": "x"},
                               {"name": "length", "target_chars": 4}, {"name": "json_valid"}])
    functions, weights = build_reward_functions(grpo)
    assert [f.__name__ for f in functions] == ["exact_match", "contains", "regex_3", "regex_4", "length", "json_valid"]
    assert weights == [1.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    replies = [[{"role": "assistant", "content": " 42 "}], [{"role": "assistant", "content": "It is 42."}],
               [{"role": "assistant", "content": '{"a": 1}'}]]
    scores = [f(prompts=[None] * 3, completions=replies, reference=["42"] * 3) for f in functions]
    assert scores[0] == [1.0, 0.0, 0.0] and scores[1] == [1.0, 1.0, 0.0]
    assert scores[2] == [0.0, 0.0, 0.0] and functions[2](completions=["42"]) == [1.0]
    assert scores[4] == [1.0, 0.0, 0.0] and scores[5] == [1.0, 0.0, 1.0]  # " 42 " is 4 characters; 42 is JSON


def test_prompt_is_the_conversation_up_to_the_last_user_turn():
    row = Row(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}])
    assert prompt_and_reference(row) == (row.messages[:3], "d")
    assert prompt_and_reference(Row(messages=row.messages[:3])) == (row.messages[:3], "")
    assert prompt_and_reference(Row(messages=[{"role": "system", "content": "s"}])) is None


def expected_reward(model, tokenizer, prompts) -> float:
    """Mean over prompts of P(first reply token starts with [a-z]) under ``model``."""
    lowercase = torch.tensor([bool(re.match(PATTERN, tokenizer.decode([i]))) for i in range(len(tokenizer))])
    total = 0.0
    with torch.no_grad():
        for messages in prompts:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
            probs = torch.softmax(model(ids).logits[0, -1].float(), -1)[: len(lowercase)]
            total += float(probs[lowercase].sum())
    return total / len(prompts)


@pytest.mark.slow
def test_grpo_with_a_regex_reward_raises_the_expected_reward(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    run_dir = make_run_dir(tmp_path, tiny_model_dir, stage="grpo", method="full", max_steps=12,
                           per_device_batch_size=8, gradient_accumulation_steps=1, learning_rate=0.02,
                           cutoff_len=128, compute_type="fp32",
                           grpo={"num_generations": 8, "max_completion_length": 2,
                                 "rewards": [{"name": "regex", "pattern": PATTERN}]})
    done = run_engine("train", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = read_result(run_dir)
    assert result["status"] == "succeeded" and result["output"] == "model" and result["reference_model"] == "none"
    rows = [row for row in events(run_dir) if "loss" in row]
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert all({"reward", "rewards/regex/mean", "completions/mean_length"} <= set(row) for row in rows)

    tokenizer = load_tokenizer(tiny_model_dir)
    prompts = [prompt_and_reference(Row(messages=row["messages"]))[0] for row in conversations()]
    before = expected_reward(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer, prompts)
    after = expected_reward(AutoModelForCausalLM.from_pretrained(run_dir / "model").eval(), tokenizer, prompts)
    assert after > before + 0.1, (before, after)


@pytest.mark.slow
def test_grpo_with_a_reward_model_from_an_rm_run_trains_and_logs_its_reward(tmp_path, tiny_model_dir):
    """RM -> RL: an rm run (runs/rm_job) scores the replies of a grpo run beside it (runs/grpo_job)."""
    import shutil

    from tests.engine.test_preference_train import PAIRS
    from tests.engine.tiny_runs import write_jsonl

    rm_run = make_run_dir(tmp_path / "rm", tiny_model_dir, write_jsonl(tmp_path / "pairs.jsonl", PAIRS), stage="rm",
                          method="lora", lora_rank=4, max_steps=2)
    done = run_engine("train", "--run-dir", str(rm_run))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(rm_run, runs / "rm_job")
    grpo = make_run_dir(tmp_path / "grpo", tiny_model_dir, stage="grpo", method="lora", lora_rank=4, max_steps=2,
                        per_device_batch_size=4, gradient_accumulation_steps=1, cutoff_len=128,
                        grpo={"num_generations": 4, "max_completion_length": 4,
                              "rewards": [{"name": "reward_model", "run": "rm_job"},
                                          {"name": "length", "target_chars": 8, "weight": 0.5}]})
    shutil.copytree(grpo, runs / "grpo_job")
    done = run_engine("train", "--run-dir", str(runs / "grpo_job"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "reward_model: scoring replies with run rm_job" in done.stdout
    rows = [row for row in events(runs / "grpo_job") if "loss" in row]
    assert len(rows) == 2 and all("rewards/reward_model/mean" in row and "rewards/length/mean" in row for row in rows)
    assert len({row["rewards/reward_model/mean"] for row in rows}) == 2  # real, varying scores

    missing = make_run_dir(tmp_path / "missing", tiny_model_dir, stage="grpo", max_steps=1, per_device_batch_size=4,
                           gradient_accumulation_steps=1, cutoff_len=128,
                           grpo={"max_completion_length": 4, "rewards": [{"name": "reward_model", "run": "nope"}]})
    done = run_engine("train", "--run-dir", str(missing))
    assert done.returncode == 1 and read_result(missing)["error"].startswith("reward_model: there is no run 'nope'")
