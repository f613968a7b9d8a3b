"""Stop & save (POST /api/v1/jobs/{id}/stop): a real running job ends training at its next step, saves the
adapter trained so far and ends succeeded, saying at which step it stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.api.conftest import ALPACA_ROWS, wait_for_state

MAX_STEPS = 400


def test_stop_and_save_ends_a_running_job_with_its_adapter(client):
    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    job = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [ds["id"]], "max_steps": MAX_STEPS, "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "save_steps": None}).json()
    queued = client.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": [ds["id"]], "max_steps": 2}).json()
    resp = client.post(f"/api/v1/jobs/{queued['id']}/stop")  # waits behind the first: nothing to save yet
    assert resp.status_code == 409 and "has not started; cancel it instead" in resp.json()["message"]
    assert client.post(f"/api/v1/jobs/{queued['id']}/cancel").json()["state"] == "cancelled"

    deadline = time.monotonic() + 180
    while client.get(f"/api/v1/jobs/{job['id']}").json()["step"] < 2:
        assert time.monotonic() < deadline, client.get(f"/api/v1/jobs/{job['id']}/logs").json()
        time.sleep(0.2)
    resp = client.post(f"/api/v1/jobs/{job['id']}/stop")
    assert resp.status_code == 202, resp.text
    assert resp.json()["stop_requested"] is True

    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done
    stopped = done["stopped_early_at_step"]
    assert 2 <= stopped < MAX_STEPS and done["step"] == stopped and done["stop_requested"] is False
    adapter = Path(done["run_dir"]) / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and done["output"] == "adapter"
    log = client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"]
    assert f"stop requested: training ends at step {stopped} of {MAX_STEPS}" in log
    # a finished job cannot be stopped again
    resp = client.post(f"/api/v1/jobs/{job['id']}/stop")
    assert resp.status_code == 409 and "already succeeded" in resp.json()["message"]
    assert client.post("/api/v1/jobs/job_nope/stop").status_code == 404
