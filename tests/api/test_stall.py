"""Stall watchdog on a real training subprocess: a step hung on purpose (the engine's test hook sleeps at step 4)
turns the running job 'stalled' on GET /jobs/{id}, with the last log lines and a Python stack dump of the training
process that names the sleeping frame; cancel still ends it."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.conftest import ALPACA_ROWS, wait_for_state


@pytest.fixture
def hang_at_step_4(monkeypatch):
    monkeypatch.setenv("TUNESMITH_TEST_HANG_AT_STEP", "4")
    monkeypatch.setenv("TUNESMITH_TEST_HANG_S", "600")
    monkeypatch.setenv("TUNESMITH_STALL_FACTOR", "3")
    monkeypatch.setenv("TUNESMITH_STALL_MIN_S", "3")


def test_hung_step_turns_the_job_stalled_with_a_stack_dump(hang_at_step_4, client):
    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    job = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [ds["id"]], "max_steps": 50, "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "save_steps": None}).json()
    deadline = time.monotonic() + 240
    view = client.get(f"/api/v1/jobs/{job['id']}").json()
    while not (view["stalled"] and "_hang_for_test" in view["stalled"]["stack_dump"]):
        assert view["state"] in ("queued", "running"), view
        assert time.monotonic() < deadline, (view, client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"])
        time.sleep(0.5)
        view = client.get(f"/api/v1/jobs/{job['id']}").json()
    stalled = view["stalled"]
    assert view["state"] == "running" and view["step"] == 3 and stalled["last_step"] == 3
    assert stalled["idle_s"] > stalled["threshold_s"] >= 3 and stalled["dump_problem"] is None
    assert "test hook: hanging at step 4" in stalled["log_tail"]
    dump = stalled["stack_dump"]
    assert "stall_probe.py" in dump and "line" in dump and "in on_step_begin" in dump  # the sleeping frame and caller
    assert client.get("/api/v1/jobs").json()["data"][0]["stalled"]["last_step"] == 3  # the list shows it too

    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    done = wait_for_state(client, job["id"], ("cancelled", "failed", "succeeded"), timeout=60)
    assert done["state"] == "cancelled" and done["stalled"] is None
