"""POST /api/v1/models/download against a local server speaking the hub's file protocol (tests/hub_server.py):
size shown before starting, progress, a flaky connection, cancel and resume, the model in the list and a run on
it, and every refusal (offline, unreachable, gated, unknown, disk too small, already there) as a clean 4xx/5xx."""

import json
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from tests.api.conftest import wait_for_state
from tests.hub_server import HubServer

URL = "/api/v1/models/download"
REPO = "test-org/tiny-llama"
MODEL_ID = "test-org--tiny-llama"
MIB = 1024 * 1024


@pytest.fixture
def tiny_files(tiny_model_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def big_repo(tmp_path, tiny_model_dir) -> Path:
    """A repository with a weights file large enough to cancel mid-way."""
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_model_dir / "config.json").read_bytes())
    (folder / "model.safetensors").write_bytes(os.urandom(6 * MIB + 12345))
    return folder


@pytest.fixture
def api(settings, monkeypatch):
    """The app without a training runner; no token, online, the default disk reserve."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TUNESMITH_DOWNLOAD_RESERVE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    with TestClient(create_app(settings, start_runner=False)) as client:
        yield client


def wait_download(client, job_id: str, states=("succeeded", "failed", "cancelled"), timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{URL}/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"download {job_id} still {job['state']} after {timeout}s")


def test_plan_shows_the_files_and_size_before_anything_is_fetched(api, settings, tiny_model_dir, tiny_files,
                                                                  monkeypatch):
    with HubServer({REPO: tiny_model_dir}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        plan = api.get(f"{URL}/plan", params={"repo_id": REPO}).json()
        assert {f["path"]: f["size"] for f in plan["files"]} == {n: len(b) for n, b in tiny_files.items()}
        assert plan["total_bytes"] == plan["needed_bytes"] == sum(map(len, tiny_files.values()))
        assert (plan["model_id"], plan["revision"], plan["commit"]) == (MODEL_ID, "main", hub.commits[REPO])
        assert plan["present_bytes"] == 0 and plan["fits"] and plan["free_bytes"] > plan["total_bytes"]
        assert not any(method == "GET" and "/resolve/" in path for method, path, _ in hub.requests)
    assert not (settings.models_dir / ".downloads").exists()


def test_downloaded_model_joins_the_model_list_and_a_job_trains_on_it(client, settings, tiny_model_dir, tiny_files,
                                                                     monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # the connection drops after 100000 bytes of the weights on the first try: the download continues from there
    with HubServer({REPO: tiny_model_dir}, cut_first_get={"model.safetensors": 100_000}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        reply = client.post(URL, json={"repo_id": REPO})
        assert reply.status_code == 202, reply.text
        started = reply.json()
        assert started["state"] == "running" and started["bytes_total"] == sum(map(len, tiny_files.values()))
        done = wait_download(client, started["id"])
        ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith("model.safetensors")]
    assert ranges == [None, "bytes=100000-"]
    assert done["state"] == "succeeded", done
    assert done["bytes_done"] == done["bytes_total"] and done["progress"] == 1.0
    target = settings.models_dir / MODEL_ID
    assert {n: (target / n).read_bytes() for n in tiny_files} == tiny_files
    assert not (target / ".cache").exists() and not (settings.models_dir / ".downloads" / MODEL_ID).exists()
    assert MODEL_ID in [m["id"] for m in client.get("/api/v1/models").json()["data"]]
    assert client.get(URL).json()["data"][0]["id"] == started["id"]

    job = client.post("/api/v1/jobs", json={
        "base_model": MODEL_ID, "datasets": ["identity"], "max_steps": 2, "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "learning_rate": 5e-3, "max_samples": 8}).json()
    finished = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert finished["state"] == "succeeded", finished["error"]
    assert (Path(finished["run_dir"]) / "adapter" / "adapter_model.safetensors").is_file()


def test_cancel_keeps_the_partial_file_and_a_restarted_studio_resumes_it(api, settings, big_repo, monkeypatch):
    weights = (big_repo / "model.safetensors").read_bytes()
    with HubServer({"test-org/big": big_repo}, pause_after={"model.safetensors": 3 * MIB}, pause_s=3) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        job = api.post(URL, json={"repo_id": "test-org/big"}).json()
        deadline = time.monotonic() + 60
        while (live := api.get(f"{URL}/{job['id']}").json())["bytes_done"] < 2 * MIB:
            assert time.monotonic() < deadline, "the first megabytes never arrived"
            time.sleep(0.02)
        assert live["current_file"] == "model.safetensors" and live["state"] == "running"
        time.sleep(1.1)  # the server pauses mid-file: the speed is measurable, the time left follows from it
        live = api.get(f"{URL}/{job['id']}").json()
        assert live["bytes_per_s"] > 0 and live["eta_s"] == pytest.approx(
            (live["bytes_total"] - live["bytes_done"]) / live["bytes_per_s"], rel=0.05)
        cancelled = api.post(f"{URL}/{job['id']}/cancel")
        assert cancelled.status_code == 200
        stopped = wait_download(api, job["id"])
        assert stopped["state"] == "cancelled" and "resume" in stopped["error"]
        assert api.post(f"{URL}/{job['id']}/cancel").status_code == 409
        assert "test-org--big" not in [m["id"] for m in api.get("/api/v1/models").json()["data"]]

        # a new studio process (a restart) still lists the unfinished download and resumes it
        with TestClient(create_app(settings, start_runner=False)) as restarted:
            listed = restarted.get(URL).json()["data"]
            assert [(d["id"], d["state"]) for d in listed] == [(job["id"], "interrupted")]
            partial = listed[0]["bytes_done"] - len((big_repo / "config.json").read_bytes())
            assert 2 * MIB <= partial <= 3 * MIB
            assert restarted.get(f"{URL}/plan", params={"repo_id": "test-org/big"}).json()["present_bytes"] == (
                listed[0]["bytes_done"])
            again = restarted.post(URL, json={"repo_id": "test-org/big"}).json()
            assert wait_download(restarted, again["id"])["state"] == "succeeded"
            assert [d["state"] for d in restarted.get(URL).json()["data"]] == ["succeeded"]
        ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith("model.safetensors")]
    assert ranges == [None, f"bytes={partial}-"]  # only the missing part was fetched again
    target = settings.models_dir / "test-org--big"
    assert (target / "model.safetensors").read_bytes() == weights
    record = json.loads((target / ".tunesmith-download.json").read_text())
    assert record["plan"]["commit"] == hub.commits["test-org/big"] and record["endpoint"] == hub.url


def test_gated_models_need_the_server_side_token(api, tiny_model_dir, monkeypatch):
    with HubServer({REPO: tiny_model_dir}, gated={REPO: "hf_secret"}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        refused = api.get(f"{URL}/plan", params={"repo_id": REPO})
        assert refused.status_code == 403 and "gated" in refused.json()["message"]
        assert "HF_TOKEN" in refused.json()["hint"]
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        reply = api.post(URL, json={"repo_id": REPO})
        assert reply.status_code == 202 and "hf_secret" not in reply.text
        assert wait_download(api, reply.json()["id"])["state"] == "succeeded"


def test_refusals_are_clean_and_name_the_field(api, settings, tiny_model_dir, monkeypatch):
    with HubServer({REPO: tiny_model_dir}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        cases = [
            ({"repo_id": "not a repo"}, 422, "repo_id", "not a hub model id"),
            ({"repo_id": "../../etc"}, 422, "repo_id", "not a hub model id"),
            ({"repo_id": "test-org/nope"}, 404, "repo_id", "no model 'test-org/nope'"),
            ({"repo_id": REPO, "revision": "v9"}, 404, "revision", "no revision 'v9'"),
            ({"repo_id": REPO, "source": "modelscope"}, 503, "source", "pip install modelscope"),
        ]
        for body, status, field, words in cases:
            reply = api.post(URL, json=body)
            assert reply.status_code == status, (body, reply.text)
            assert reply.json()["errors"][0]["loc"] == ["body", field] and words in reply.json()["message"], body
        monkeypatch.setenv("TUNESMITH_DOWNLOAD_RESERVE_BYTES", str(10**18))
        assert api.get(f"{URL}/plan", params={"repo_id": REPO}).json()["fits"] is False
        full = api.post(URL, json={"repo_id": REPO})
        assert full.status_code == 507 and "free" in full.json()["message"]
        monkeypatch.delenv("TUNESMITH_DOWNLOAD_RESERVE_BYTES")
        (settings.models_dir / MODEL_ID).mkdir()
        assert api.post(URL, json={"repo_id": REPO}).status_code == 409
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        offline = api.get(f"{URL}/plan", params={"repo_id": REPO})
        assert offline.status_code == 503 and "offline" in offline.json()["message"]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    unreachable = api.post(URL, json={"repo_id": REPO})
    assert unreachable.status_code == 503 and "cannot reach the model hub" in unreachable.json()["message"]
    assert api.get(f"{URL}/dl_nothing").status_code == 404
