"""Stage grpo with a regex reward, through the API: a real job (the runner's ``accelerate launch`` subprocess) fully
fine-tunes the tiny random Llama on the arithmetic chats with the reward "the reply starts with a lowercase letter".
That reward only depends on the first sampled token, so its expected value under a model is exact (see
tests/engine/test_grpo.expected_reward): after training it is higher than the base model's. The Runs card's metrics
hold the mean reward, the function's own mean and the reply length per step; no reference model is loaded
(beta 0); the trained model downloads as a whole model and answers through the chat endpoint with its own weights."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from backend.engine.model import load_tokenizer
from backend.engine.rows import Row
from backend.engine.stages.grpo import prompt_and_reference
from tests.api.stage_checks import (
    TINY_RUN,
    assert_chats_with_its_weights,
    finished,
    result,
    run_dir,
    step_rows,
    submit_job,
)
from tests.engine.cpu_jobs import studio, upload_conversations
from tests.engine.test_grpo import PATTERN, expected_reward
from tests.engine.tiny_runs import conversations

pytestmark = pytest.mark.slow

GRPO_REGEX = {**TINY_RUN, "stage": "grpo", "method": "full", "max_steps": 12, "per_device_batch_size": 8,
              "learning_rate": 0.02, "cutoff_len": 128, "compute_type": "fp32", "seed": 42,
              "grpo": {"num_generations": 8, "max_completion_length": 2, "rewards": [{"name": "regex", "pattern": PATTERN}]}}


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, tiny_model_dir):
    with studio(tmp_path_factory.mktemp("stage_grpo"), tiny_model_dir) as client:
        job_id = submit_job(client, {**GRPO_REGEX, "datasets": [upload_conversations(client)]})
        yield client, finished(client, {"grpo": job_id})["grpo"]


def test_grpo_with_a_regex_reward_raises_the_expected_reward(grpo_run, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    client, job = grpo_run
    assert job["output"] == "model"
    done = result(job)
    assert done["status"] == "succeeded" and done["reference_model"] == "none"
    rows = step_rows(client, job["id"])
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert all({"reward", "rewards/regex/mean", "completions/mean_length"} <= set(row) for row in rows)
    # the Runs card's sampled replies: two per step, each scored by the regex (1.0 when the reply starts [a-z])
    for row in rows:
        assert len(row["samples"]) == 2 and all(set(s["rewards"]) == {"regex"} for s in row["samples"]), row
        assert all(s["rewards"]["regex"] == float(bool(re.match(PATTERN, s["completion"]))) == s["reward"]
                   for s in row["samples"]), row["samples"]
        assert all(s["prompt"] and len(s["prompt"]) <= 200 for s in row["samples"])
    log = (run_dir(job) / "stdout.log").read_text(encoding="utf-8", errors="replace")
    last = rows[-1]["samples"][-1]
    assert log.count("  sample 1: ") == 12 and f"  sample 2: {last['prompt']!r} -> {last['completion']!r}" in log
    assert "Advantage" not in log and not (run_dir(job) / "checkpoints" / "completions").exists()  # no trl table

    tokenizer = load_tokenizer(tiny_model_dir)
    prompts = [prompt_and_reference(Row(messages=row["messages"]))[0] for row in conversations()]
    before = expected_reward(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer, prompts)
    after = expected_reward(AutoModelForCausalLM.from_pretrained(run_dir(job) / "model").eval(), tokenizer, prompts)
    print(f"grpo regex: expected reward {before:.3f} -> {after:.3f}; logged mean reward {rows[0]['reward']:.3f} "
          f"(step 1) -> {rows[-1]['reward']:.3f} (step 12)")
    assert after > before + 0.1, (before, after)


def test_grpo_full_output_downloads_as_a_model_and_chats_with_its_weights(grpo_run):
    client, job = grpo_run
    resp = client.get(f"/api/v1/jobs/{job['id']}/adapter")
    assert resp.status_code == 409 and "produces a full model" in resp.json()["message"], resp.text
    resp = client.get(f"/api/v1/jobs/{job['id']}/merged")
    assert resp.status_code == 200, resp.text[:500]
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    assert any(n.endswith("config.json") for n in names) and any(n.endswith(".safetensors") for n in names), names
    merged = client.post(f"/api/v1/jobs/{job['id']}/merge")
    assert merged.status_code == 200 and merged.json()["path"] == str(run_dir(job) / "model"), merged.text
    assert_chats_with_its_weights(client, job["id"], "model", run_dir(job) / "model")
