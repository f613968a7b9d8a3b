"""Stage grpo's own parts: the built-in reward functions (pure), the prompt/reference split, the exact expected
reward of the regex "the reply starts with a lowercase letter" (it only depends on the first sampled token: the
probability mass of the first-token candidates that start with [a-z]), and the engine's refusal of a reward model
run that is not there or not an rm run. The training runs themselves go through the API: tests/api/test_stage_grpo.py (regex reward
raises the expected reward) and tests/api/test_stage_rm.py (a reward_model reward from an rm run)."""

from __future__ import annotations

import re

import pytest
import torch

from backend.config.grpo import GrpoConfig
from backend.engine.rewards import build_reward_functions
from backend.engine.rows import Row
from backend.engine.stages.grpo import prompt_and_reference
from tests.engine.tiny_runs import make_run_dir

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


def test_a_reward_model_reward_naming_no_rm_run_fails_saying_so(tmp_path, tiny_model_dir):
    """The API refuses such a grpo run at submit time (tests/api/test_stage_rm.py); the engine, given one anyway,
    fails with the reason (an EngineError: result.json's error) rather than training without the reward."""
    from backend.engine.failures import EngineError
    from backend.engine.reward_model_score import load_reward_model

    with pytest.raises(EngineError, match="^reward_model: there is no run 'nope' beside this run"):
        load_reward_model(tmp_path / "nope")
    sft = make_run_dir(tmp_path / "sft_job", tiny_model_dir)  # run.yaml only: nothing trained
    with pytest.raises(EngineError, match="^reward_model: run 'run' is a stage 'sft' run, not a reward model"):
        load_reward_model(sft)
