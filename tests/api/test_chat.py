"""POST /api/v1/chat end to end: a real chat worker process on the tiny model, a real trained LoRA job."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.chat.worker_process import ChatWorker
from backend.jobs.runner import pid_alive
from backend.jobs.store import JobRow, utc_now
from tests.api.conftest import ALPACA_ROWS, wait_for_state

FAKE_WORKER = str(Path(__file__).resolve().parents[1] / "fake_chat_worker.py")
HELLO = [{"role": "user", "content": "What is two plus two?"}]


def upload(client):
    resp = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())},
                       data={"name": "numbers"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.mark.slow  # trains a tiny LoRA job
def test_chat_with_base_then_trained_adapter(client, settings):
    # Queue a tiny LoRA run first: it trains while we chat with the base model.
    job = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [upload(client)], "max_steps": 2, "per_device_batch_size": 1,
        "gradient_accumulation_steps": 1, "cutoff_len": 64}).json()

    first = client.post("/api/v1/chat", json={"model": "tiny-llama", "messages": HELLO, "max_new_tokens": 8,
                                              "temperature": 0})
    assert first.status_code == 200, first.text
    reply = first.json()
    assert isinstance(reply["text"], str) and 1 <= reply["tokens"] <= 8 and reply["seconds"] >= 0
    assert reply["target"]["kind"] == "base" and reply["target"]["label"] == "tiny-llama"
    chat = client.app.state.chat
    pid = chat.worker_pid
    assert pid and pid_alive(pid)

    again = client.post("/api/v1/chat", json={
        "model": "tiny-llama", "max_new_tokens": 4, "temperature": 0.8, "top_p": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, *HELLO,
                     {"role": "assistant", "content": reply["text"]}, {"role": "user", "content": "Sure?"}]})
    assert again.status_code == 200, again.text
    assert chat.worker_pid == pid  # the loaded model is reused

    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done
    resp = client.post("/api/v1/chat", json={"job_id": job["id"], "messages": HELLO, "max_new_tokens": 6})
    assert resp.status_code == 200, resp.text
    target = resp.json()["target"]
    assert target["kind"] == "adapter" and Path(target["adapter_dir"]) == Path(job["run_dir"]) / "adapter"
    assert Path(target["model_dir"]) == Path(settings.models_dir / "tiny-llama").resolve()
    assert chat.worker_pid not in (None, pid) and not pid_alive(pid)  # switching target replaced the worker


@pytest.mark.parametrize("body", [
    {"messages": HELLO},                                                  # no target
    {"model": "tiny-llama", "job_id": "job_x", "messages": HELLO},        # two targets
    {"model": "tiny-llama", "messages": []},
    {"model": "tiny-llama", "messages": [{"role": "robot", "content": "hi"}]},
    {"model": "tiny-llama", "messages": HELLO, "max_new_tokens": 0},
    {"model": "tiny-llama", "messages": HELLO, "max_new_tokens": 4096},
    {"model": "tiny-llama", "messages": HELLO, "temperature": 2.5},
    {"model": "tiny-llama", "messages": HELLO, "top_p": 0},
])
def test_bad_bodies_are_422(client, body):
    assert client.post("/api/v1/chat", json=body).status_code == 422
    assert client.app.state.chat.worker_pid is None


def test_unknown_targets_404_and_unfinished_job_409(client, settings):
    resp = client.post("/api/v1/chat", json={"job_id": "job_nope", "messages": HELLO})
    assert resp.status_code == 404 and "job_nope" in resp.json()["message"]
    resp = client.post("/api/v1/chat", json={"model": "no-such-model", "messages": HELLO})
    assert resp.status_code == 404 and "tiny-llama" in resp.json()["message"]  # lists what exists
    store = client.app.state.jobs.store
    store.insert(JobRow(id="job_failed", name="x", state="failed", config={}, created_at=utc_now(),
                        run_dir=str(settings.runs_dir / "job_failed")))
    resp = client.post("/api/v1/chat", json={"job_id": "job_failed", "messages": HELLO})
    assert resp.status_code == 409 and "failed" in resp.json()["message"]


@pytest.mark.parametrize("mode,status,text", [
    ("load-error", 422, "could not load the model: OSError: no weights (check the folder)"),
    ("crash", 422, "exited unexpectedly (exit code 3): RuntimeError: the fake worker fell over"),
    ("reply-error", 422, "ValueError: prompt too long"),
])
def test_worker_failures_are_422_with_the_worker_error(client, mode, status, text):
    chat = client.app.state.chat
    chat._start_worker = lambda target: ChatWorker([sys.executable, FAKE_WORKER, mode])
    resp = client.post("/api/v1/chat", json={"model": "tiny-llama", "messages": HELLO})
    assert resp.status_code == status and text in resp.json()["message"], resp.text


def test_web_process_stays_torch_free_while_chatting(tmp_path, tiny_model_dir):
    code = f"""
import sys, json
from fastapi.testclient import TestClient
from backend.api.main import create_app
from backend.settings import Settings
from backend.chat.worker_process import ChatWorker
app = create_app(Settings.from_env({str(tmp_path / 'home')!r}), start_runner=False)
# The real worker imports torch in its own process; a protocol fake keeps this check fast.
app.state.chat._start_worker = lambda target: ChatWorker([sys.executable, {FAKE_WORKER!r}, "echo"])
with TestClient(app, base_url="http://127.0.0.1") as c:  # a loopback Host the security guard serves
    r = c.post('/api/v1/chat', json={{"model": "tiny-llama", "messages": [{{"role": "user", "content": "hi"}}],
                                     "max_new_tokens": 2}})
    assert r.status_code == 200 and r.json()["text"] == "echo: hi", r.text
    pid = app.state.chat.worker_pid
print(json.dumps({{"heavy": [m for m in ('torch', 'transformers', 'peft', 'trl', 'accelerate') if m in sys.modules],
                  "pid": pid}}))
"""
    env = {**os.environ, "TUNESMITH_MODELS_DIR": str(tiny_model_dir.parent), "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert not pid_alive(result["pid"])  # the lifespan shutdown stopped the worker


def test_stream_endpoint_sends_ndjson_deltas_then_done(client):
    chat = client.app.state.chat
    chat._start_worker = lambda target: ChatWorker([sys.executable, FAKE_WORKER, "echo"])
    resp = client.post("/api/v1/chat/stream", json={"model": "tiny-llama", "messages": HELLO})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert "".join(e["delta"] for e in events[:-1]).strip() == "echo: What is two plus two?"
    last = events[-1]
    assert last["done"] is True and last["text"] == "echo: What is two plus two?" and last["trimmed_turns"] == 0
    assert last["target"]["label"] == "tiny-llama"


def test_stream_endpoint_load_failure_is_an_http_error(client):
    chat = client.app.state.chat
    chat._start_worker = lambda target: ChatWorker([sys.executable, FAKE_WORKER, "load-error"])
    resp = client.post("/api/v1/chat/stream", json={"model": "tiny-llama", "messages": HELLO})
    assert resp.status_code == 422 and "no weights" in resp.json()["message"]
