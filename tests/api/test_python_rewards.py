"""Stage grpo with Python reward functions from the studio's rewards/ folder: listed by GET /api/v1/rewards
(read with ast, never imported by the web process), checked at submit (unknown file or function: 422 naming
grpo.rewards[i].function), copied into the run directory and called by the engine. A real tiny grpo run whose
python rewards are logged: one returns 1 when the dataset's reference reply reached it (exactly 1.0 logged),
one scores the reply's length."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.conftest import ALPACA_ROWS, wait_for_state

REWARDS = '''
def knows_reference(prompts, completions, reference, **kwargs):
    """1 when the reference reply reached the function."""
    return [1.0 if ref else 0.0 for ref in reference]


def short(prompts, completions, **kwargs):
    """Shorter replies score higher."""
    return [1.0 / (1 + len(c[-1]["content"] if isinstance(c, list) else c)) for c in completions]


def _helper():
    return 0
'''

RUN = {"base_model": "tiny-llama", "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "cutoff_len": 64,
       "save_steps": None, "seed": 0, "compute_type": "fp32", "method": {"name": "lora", "rank": 4, "alpha": 8},
       "stage": "grpo", "max_steps": 2}


def grpo(dataset: str, *functions: str) -> dict:
    return {**RUN, "datasets": [dataset], "grpo": {"num_generations": 2, "max_completion_length": 8, "rewards": [
        {"name": "python", "function": f} for f in functions]}}


def problem(resp) -> tuple[list, str]:
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    return error["loc"], error["msg"]


def test_python_rewards_are_listed_checked_and_logged(client, settings):
    assert client.get("/api/v1/rewards").json()["data"] == []
    folder = settings.home / "rewards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checks.py").write_text(REWARDS)
    listed = client.get("/api/v1/rewards").json()
    assert listed["folder"] == str(folder)
    assert listed["data"] == [
        {"function": "checks:knows_reference", "file": "checks.py", "doc": "1 when the reference reply reached the function."},
        {"function": "checks:short", "file": "checks.py", "doc": "Shorter replies score higher."}]

    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    loc, msg = problem(client.post("/api/v1/jobs", json=grpo(ds["id"], "checks:short", "nofile:short")))
    assert loc == ["body", "grpo", "rewards", 1, "function"] and "no file nofile.py in the rewards folder" in msg
    loc, msg = problem(client.post("/api/v1/jobs", json=grpo(ds["id"], "checks:_helper")))
    assert loc == ["body", "grpo", "rewards", 0, "function"] and "has no top-level function '_helper'" in msg
    resp = client.post("/api/v1/jobs", json=grpo(ds["id"], "../x:short"))
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"][:4] == ["body", "grpo", "rewards", 0]
    assert client.get("/api/v1/jobs").json()["data"] == []  # nothing refused was stored

    job = client.post("/api/v1/jobs", json=grpo(ds["id"], "checks:knows_reference", "checks:short"))
    assert job.status_code == 201, job.text
    (folder / "checks.py").write_text("")  # the run uses the copy made at submit
    job = wait_for_state(client, job.json()["id"], ("succeeded", "failed", "cancelled"))
    assert job["state"] == "succeeded", client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"][-3000:]
    assert (Path(job["run_dir"]) / "rewards" / "checks.py").read_text() == REWARDS
    rows = [row for row in client.get(f"/api/v1/jobs/{job['id']}/metrics").json()["data"] if "loss" in row]
    assert len(rows) == 2, rows
    assert all(row["rewards/checks.knows_reference/mean"] == 1.0 for row in rows), rows
    assert all(0.0 < row["rewards/checks.short/mean"] <= 1.0 for row in rows), rows
