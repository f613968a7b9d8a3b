"""Job routes end to end: real accelerate-launched training of a tiny model, real SQLite, real files."""

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from backend.jobs.runner import pid_alive
from tests.api.conftest import ALPACA_ROWS, wait_for_state

pytestmark = pytest.mark.slow


def upload(client, rows=ALPACA_ROWS, name="numbers"):
    data = json.dumps(rows).encode()
    resp = client.post("/api/v1/datasets", files={"file": ("numbers.json", data, "application/json")},
                       data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_health_and_models(client):
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    models = client.get("/api/v1/models").json()
    ids = [m["id"] for m in models["data"]]
    assert "tiny-llama" in ids and models["count"] == len(ids)
    tiny = next(m for m in models["data"] if m["id"] == "tiny-llama")
    assert Path(tiny["path"]).is_dir() and tiny["model_type"] == "llama"


@pytest.mark.parametrize("patch,loc", [
    ({"datasets": ["ds_missing"]}, ["body", "datasets", 0]),
    ({"base_model": "no-such-model"}, ["body", "base_model"]),
    ({"learning_rate": 3.0}, ["body", "learning_rate"]),
    ({"compute_type": "fp16"}, ["body", "compute_type"]),
    ({"use_liger_kernel": "on"}, ["body", "use_liger_kernel"]),  # Liger's kernels need a GPU
    ({"per_device_batch_size": 0}, ["body", "per_device_batch_size"]),
])
def test_invalid_job_is_422_naming_the_field(client, settings, patch, loc):
    body = {"base_model": "tiny-llama", "datasets": [upload(client)], **patch}
    resp = client.post("/api/v1/jobs", json=body)
    assert resp.status_code == 422, resp.text
    locs = [e["loc"] for e in resp.json()["errors"]]
    assert any(found[: len(loc)] == loc for found in locs), locs
    assert client.get("/api/v1/jobs").json()["count"] == 0
    assert [p.name for p in settings.runs_dir.iterdir()] == []  # nothing half-written


def test_unknown_job_is_404(client):
    assert client.get("/api/v1/jobs/job_nope").status_code == 404
    assert client.post("/api/v1/jobs/job_nope/cancel").status_code == 404
    assert client.get("/api/v1/jobs/job_nope/adapter").status_code == 404


def test_lora_job_trains_exports_and_merges(client, settings):
    ds = upload(client)
    resp = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [ds], "max_steps": 4, "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "learning_rate": 5e-3, "name": "api-lora"})
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["state"] in ("queued", "running") and job["name"] == "api-lora"
    assert job["config"]["method"]["name"] == "lora" and job["config"]["datasets"] == [ds]
    run_dir = Path(job["run_dir"])
    assert (run_dir / "run.yaml").is_file()

    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", (done["error"], client.get(f"/api/v1/jobs/{job['id']}/logs").json())
    assert done["output"] == "adapter" and done["progress"] == 1.0 and done["step"] == 4
    # what the engine really ran with, from engine.json (written when training started)
    engine = done["engine"]
    assert engine["attn_implementation"] == "sdpa" and engine["precision"] in ("bf16", "fp32")
    assert engine["gradient_checkpointing"] is False and engine["liger_kernel"] is False

    launch = json.loads((run_dir / "launch.json").read_text())
    assert "accelerate.commands.launch" in launch["argv"] and "backend.engine" in launch["argv"]

    metrics = client.get(f"/api/v1/jobs/{job['id']}/metrics").json()
    assert metrics["count"] == 4 and [r["step"] for r in metrics["data"]] == [1, 2, 3, 4]
    assert all(r["loss"] == r["loss"] and r["loss"] > 0 for r in metrics["data"])
    later = client.get(f"/api/v1/jobs/{job['id']}/metrics", params={"after": 2}).json()
    assert [r["step"] for r in later["data"]] == [3, 4]
    assert client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"].strip()

    # finished jobs cannot be cancelled
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 409

    resp = client.get(f"/api/v1/jobs/{job['id']}/adapter")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    assert any(n.endswith("/adapter_config.json") for n in names)
    assert any(n.endswith("/adapter_model.safetensors") for n in names)
    assert any(n.endswith("/tokenizer.json") or n.endswith("/tokenizer_config.json") for n in names)

    assert client.get(f"/api/v1/jobs/{job['id']}/merged").status_code == 409  # not merged yet
    merge = client.post(f"/api/v1/jobs/{job['id']}/merge")
    assert merge.status_code == 200, merge.text
    files = merge.json()["files"]
    assert "config.json" in files and any(f.endswith(".safetensors") for f in files)
    merged = client.get(f"/api/v1/jobs/{job['id']}/merged")
    assert merged.status_code == 200
    merged_names = zipfile.ZipFile(io.BytesIO(merged.content)).namelist()
    assert any(n.endswith(".safetensors") for n in merged_names) and any(n.endswith("config.json") for n in merged_names)
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["has_merged"] is True

    listed = client.get("/api/v1/jobs").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == job["id"]


def test_cancel_running_and_queued_jobs(client):
    ds = upload(client)
    body = {"base_model": "tiny-llama", "datasets": [ds], "max_steps": 100_000, "per_device_batch_size": 1,
            "gradient_accumulation_steps": 1, "cutoff_len": 64}
    first = client.post("/api/v1/jobs", json=body).json()
    second = client.post("/api/v1/jobs", json={**body, "max_steps": 3}).json()
    wait_for_state(client, first["id"], ("running",))
    assert client.get(f"/api/v1/jobs/{second['id']}").json()["state"] == "queued"  # one slot on CPU
    deadline = time.monotonic() + 10  # the runner says why at its next scheduling step
    while not (waiting := client.get(f"/api/v1/jobs/{second['id']}").json()["waiting_for"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert waiting.startswith("waiting for a CPU slot") and first["id"] in waiting
    assert client.get(f"/api/v1/jobs/{first['id']}").json()["waiting_for"] is None

    cancelled = client.post(f"/api/v1/jobs/{second['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"

    deadline = time.monotonic() + 180  # cancel mid-training, once it has logged a step
    while client.get(f"/api/v1/jobs/{first['id']}/metrics").json()["count"] < 1:
        state = client.get(f"/api/v1/jobs/{first['id']}").json()["state"]
        assert time.monotonic() < deadline and state == "running", client.get(f"/api/v1/jobs/{first['id']}/logs").json()
        time.sleep(0.5)
    pid_job = client.app.state.jobs.get(first["id"])
    assert pid_job.pid
    resp = client.post(f"/api/v1/jobs/{first['id']}/cancel")
    assert resp.status_code == 200 and resp.json()["state"] == "cancelled"
    assert not pid_alive(pid_job.pid)
    assert client.get(f"/api/v1/jobs/{first['id']}").json()["error"] == "cancelled by the user"
    assert client.post(f"/api/v1/jobs/{first['id']}/cancel").status_code == 409

    # a cancelled job can be resumed: it is queued again in the same run dir and runs to the end
    resumed = client.post(f"/api/v1/jobs/{second['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["state"] in ("queued", "running")
    assert resumed.json()["error"] is None
    done = wait_for_state(client, second["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded" and done["step"] == 3
    assert client.post(f"/api/v1/jobs/{second['id']}/resume").status_code == 409


def test_web_process_never_imports_torch(tmp_path, tiny_model_dir):
    code = f"""
import sys, json
from fastapi.testclient import TestClient
from backend.api.main import create_app
from backend.settings import Settings
app = create_app(Settings.from_env({str(tmp_path / 'home')!r}))
with TestClient(app, base_url="http://127.0.0.1") as c:  # a loopback Host the security guard serves
    assert c.get("/api/v1/jobs").status_code == 200  # the routes below really ran
    assert c.get('/api/v1/health').status_code == 200
    c.get('/api/v1/models'); c.get('/api/v1/jobs'); c.get('/api/v1/datasets')
heavy = [m for m in ('torch', 'transformers', 'peft', 'trl', 'accelerate') if m in sys.modules]
print(json.dumps(heavy))
"""
    env = {**os.environ, "TUNESMITH_MODELS_DIR": str(tiny_model_dir.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
