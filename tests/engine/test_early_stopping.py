"""Early stopping on the eval loss and load-best-checkpoint-at-end, on a real tiny run (``python -m backend.engine
train`` subprocess, CPU): the run ends before max_steps once the eval loss stops improving, says where and why,
and its output is the best step's checkpoint, weight for weight. Plus the submit-time refusals (no silent no-op)."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from backend.config.schema import RunConfig
from tests.engine.tiny_runs import make_run_dir, read_result, run_engine

PATIENCE, MAX_STEPS = 2, 30


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, tiny_model_dir):
    # a learning rate this high makes the tiny model's eval loss wander within a few steps (seeded: same every run)
    run_dir = make_run_dir(tmp_path_factory.mktemp("early"), tiny_model_dir, val_size=0.25, eval_steps=1,
                           max_steps=MAX_STEPS, learning_rate=0.05, early_stopping_patience=PATIENCE,
                           load_best_model_at_end=True, save_total_limit=1)
    done = run_engine("train", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run_dir


def _eval_losses(run_dir) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [(row["step"], row["eval_loss"]) for row in rows if "eval_loss" in row]


@pytest.mark.slow
def test_run_stops_when_eval_loss_stops_improving(stopped_run):
    result = read_result(stopped_run)
    early = result["early_stopping"]
    evals = _eval_losses(stopped_run)
    stopped = early["stopped_at_step"]
    assert early["stopped"] and stopped < MAX_STEPS and early["max_steps"] == MAX_STEPS
    assert evals[-1][0] == stopped  # no evaluation (and no training) after the stop
    best_before = min(loss for _, loss in evals[:-PATIENCE])
    assert all(loss >= best_before for _, loss in evals[-PATIENCE:])  # the last PATIENCE evals did not improve
    assert f"for {PATIENCE} evaluation(s)" in early["reason"]
    train_steps = [json.loads(line)["step"] for line in (stopped_run / "events.jsonl").read_text().splitlines()]
    assert max(train_steps) == stopped
    engine = json.loads((stopped_run / "engine.json").read_text())  # what the Runs card reads
    assert engine["early_stopping"] == early and engine["best_checkpoint"] == result["best_checkpoint"]


@pytest.mark.slow
def test_output_is_the_best_steps_checkpoint(stopped_run):
    best = read_result(stopped_run)["best_checkpoint"]
    best_step, best_loss = min(_eval_losses(stopped_run), key=lambda pair: pair[1])
    assert best["step"] == best_step and best["eval_loss"] == pytest.approx(best_loss) and best["loaded"]
    assert best_step != read_result(stopped_run)["early_stopping"]["stopped_at_step"]  # best is not simply the last
    output = load_file(stopped_run / "adapter" / "adapter_model.safetensors")
    kept = load_file(stopped_run / "checkpoints" / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    assert output.keys() == kept.keys() and output
    assert all(torch.equal(output[name], kept[name]) for name in output)


BASE = {"base_model": "m", "datasets": ["d"]}


@pytest.mark.parametrize("fields, words", [
    ({"early_stopping_patience": 3}, "no validation data"),
    ({"load_best_model_at_end": True}, "no validation data"),
    ({"early_stopping_threshold": 0.1, "val_size": 0.1}, "early_stopping_threshold applies to early stopping"),
    ({"early_stopping_patience": 3, "stage": "grpo", "val_size": 0.1, "grpo": {"rewards": [{"name": "json_valid"}]},
      "per_device_batch_size": 8}, "stage 'grpo' logs none"),
])
def test_refused_where_it_would_do_nothing(fields, words):
    with pytest.raises(ValidationError) as caught:
        RunConfig.model_validate({**BASE, **fields})
    assert words in str(caught.value)


def test_accepted_with_validation_data():
    config = RunConfig.model_validate({**BASE, "val_datasets": ["v"], "early_stopping_patience": 2,
                                       "early_stopping_threshold": 0.01, "load_best_model_at_end": True})
    assert config.early_stopping_patience == 2 and config.load_best_model_at_end
