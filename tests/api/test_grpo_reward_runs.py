"""Stage grpo at submit time: a reward_model reward must name a succeeded stage-rm run; a run that does not exist,
has not succeeded or trained something else is a 422 naming grpo.rewards[i].run, and nothing is stored."""

from __future__ import annotations

import json

from tests.api.conftest import ALPACA_ROWS, wait_for_state

RUN = {"base_model": "tiny-llama", "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "cutoff_len": 64,
       "save_steps": None, "seed": 0, "compute_type": "fp32", "method": {"name": "lora", "rank": 4, "alpha": 8}}


def grpo(dataset: str, run: str) -> dict:
    return {**RUN, "datasets": [dataset], "stage": "grpo", "max_steps": 1,
            "grpo": {"num_generations": 2, "max_completion_length": 8,
                     "rewards": [{"name": "exact_match"}, {"name": "reward_model", "run": run}]}}


def problem(resp) -> tuple[list, str]:
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    return error["loc"], error["msg"]


def test_reward_model_reward_needs_a_succeeded_rm_run(client):
    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    loc, msg = problem(client.post("/api/v1/jobs", json=grpo(ds["id"], "job_0000000000")))
    assert loc == ["body", "grpo", "rewards", 1, "run"]
    assert msg.startswith("grpo.rewards[1].run: no run with id 'job_0000000000'"), msg

    sft = client.post("/api/v1/jobs", json={**RUN, "datasets": [ds["id"]], "max_steps": 1})
    assert sft.status_code == 201, sft.text
    sft = sft.json()
    loc, msg = problem(client.post("/api/v1/jobs", json=grpo(ds["id"], sft["id"])))  # queued or running
    assert loc == ["body", "grpo", "rewards", 1, "run"]
    assert "a reward model must come from a succeeded stage-rm run" in msg, msg

    sft = wait_for_state(client, sft["id"], ("succeeded", "failed", "cancelled"))
    assert sft["state"] == "succeeded", sft
    loc, msg = problem(client.post("/api/v1/jobs", json=grpo(ds["id"], sft["id"])))
    assert loc == ["body", "grpo", "rewards", 1, "run"]
    assert f"run {sft['id']} is stage 'sft', not a reward model" in msg, msg
    assert len(client.get("/api/v1/jobs").json()["data"]) == 1  # nothing refused was stored
