"""A studio (real FastAPI app, real job runner, real SQLite) shared by one test module, for the CPU proofs of the
engine paths (QLoRA, 8-bit optimizers, DeepSpeed ZeRO, FSDP2): submit real jobs, wait, read what the engine says.

Jobs are submitted up front and queue on the runner's one CPU slot, so a module pays for its runs once and its
tests share them."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.engine.tiny_runs import conversations

# 16 rows, 2 per process per step, 2 processes: 4 steps are one epoch; fp32 so that curves compare exactly
TINY_JOB = {"base_model": "tiny-llama", "max_steps": 4, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
            "cutoff_len": 64, "learning_rate": 5e-3, "lr_scheduler": "constant", "logging_steps": 1, "seed": 7}


@contextlib.contextmanager
def studio(home: Path, tiny_model_dir: Path):
    """A TestClient over the real app (runner included) whose models dir holds the tiny Llama; no GPU visible."""
    from backend.api import security
    from backend.api.main import create_app
    from backend.settings import Settings

    models = home / "models"
    models.mkdir(parents=True)
    os.symlink(tiny_model_dir, models / "tiny-llama")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNESMITH_MODELS_DIR", str(models))
        patch.setenv("CUDA_VISIBLE_DEVICES", "")
        patch.delenv("TUNESMITH_TOKEN", raising=False)
        # module-wide version of tests/conftest.py's trust of TestClient's host name
        patch.setattr(security, "LOOPBACK_HOSTS", security.LOOPBACK_HOSTS | {"testserver"})
        with TestClient(create_app(Settings.from_env(home / "home"))) as client:
            yield client


def upload_conversations(client) -> str:
    body = "".join(json.dumps(row) + "\n" for row in conversations())
    resp = client.post("/api/v1/datasets", files={"file": ("arith.jsonl", body.encode())}, data={"name": "arith"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def submit(client, dataset: str, **fields) -> str:
    resp = client.post("/api/v1/jobs", json={**TINY_JOB, "datasets": [dataset], **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def wait_done(client, job_id: str, timeout: float = 400) -> dict:
    """The finished job (GET /jobs/{id}); fails with its log tail when it did not succeed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    log = client.get(f"/api/v1/jobs/{job_id}/logs").json()["text"]
    assert job["state"] == "succeeded", f"{job_id} {job['state']}: {job.get('error')}\n{log[-4000:]}"
    return job


def losses(client, job_id: str) -> list[float]:
    rows = client.get(f"/api/v1/jobs/{job_id}/metrics").json()["data"]
    return [row["loss"] for row in rows if row.get("loss") is not None]
