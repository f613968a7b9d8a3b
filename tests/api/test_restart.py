"""Restarts lose nothing: a job running when the backend is kill -9-ed is adopted by the next backend and, when
it finishes, ends succeeded with its adapter downloadable (issue 10 item 3). Real server process, real training."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.jobs.runner import free_port, pid_alive
from tests.api.conftest import ALPACA_ROWS, wait_for_state

pytestmark = pytest.mark.slow

SERVE = ("import sys, uvicorn; from backend.api.main import create_app; from backend.settings import Settings; "
         "uvicorn.run(create_app(Settings.from_env(sys.argv[1])), host='127.0.0.1', port=int(sys.argv[2]), "
         "log_level='warning')")


def _serve(home, port) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(home), str(port)], env=dict(os.environ))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the backend did not start")


def test_job_survives_a_killed_backend_and_ends_succeeded(settings):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    server = _serve(settings.home, port)
    try:
        data = json.dumps(ALPACA_ROWS).encode()
        ds = httpx.post(f"{base}/datasets", files={"file": ("numbers.json", data, "application/json")}).json()["id"]
        job = httpx.post(f"{base}/jobs", json={"base_model": "tiny-llama", "datasets": [ds], "max_steps": 6,
                                               "per_device_batch_size": 2, "cutoff_len": 64}, timeout=30).json()
        deadline = time.monotonic() + 120
        while (row := httpx.get(f"{base}/jobs/{job['id']}").json())["state"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert row["state"] == "running"
    finally:
        server.send_signal(signal.SIGKILL)  # no shutdown hook, no cleanup: like kill -9 of the backend
        server.wait()
    app = create_app(settings)  # a new backend on the same home adopts the still-running job
    with TestClient(app) as client:
        store_row = client.app.state.jobs.get(job["id"])
        pid = store_row.pid
        assert store_row.state == "running" and pid and pid_alive(pid), "the job was not left running"
        assert job["id"] in client.app.state.runner.cpu_job_ids()  # adopted, not settled
        done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
        assert done["state"] == "succeeded", (done["error"], done["hint"])
        assert done["output"] == "adapter" and done["error"] is None
        adapter = client.get(f"/api/v1/jobs/{job['id']}/adapter")
        assert adapter.status_code == 200 and adapter.content[:2] == b"PK"
