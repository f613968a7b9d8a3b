"""POST /api/v1/jobs/preview: the launch command and files, with nothing created; distributed checks at submit."""

import json

import pytest
import yaml

from backend.jobs import runner as runner_mod
from tests.api.conftest import ALPACA_ROWS


def upload(client) -> str:
    data = json.dumps(ALPACA_ROWS).encode()
    resp = client.post("/api/v1/datasets", files={"file": ("numbers.json", data, "application/json")})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def nothing_created(client, settings):
    assert client.get("/api/v1/jobs").json()["count"] == 0
    assert not settings.runs_dir.exists() or [p.name for p in settings.runs_dir.iterdir()] == []


def test_preview_cpu_job_shows_argv_and_creates_nothing(client, settings):
    body = {"base_model": "tiny-llama", "datasets": [upload(client)], "name": "x"}
    resp = client.post("/api/v1/jobs/preview", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["files"] == {}
    argv = out["argv"]
    assert "accelerate.commands.launch" in argv and "--cpu" in argv
    assert argv[-5:-1] == ["-m", "backend.engine", "train", "--run-dir"] and argv[-1].endswith("<job_id>")
    nothing_created(client, settings)


def test_preview_cpu_two_processes(client, settings):
    body = {"base_model": "tiny-llama", "datasets": [upload(client)], "distributed": {"num_processes": 2}}
    argv = client.post("/api/v1/jobs/preview", json=body).json()["argv"]
    assert argv[argv.index("--num_processes") + 1] == "2" and "--multi_gpu" in argv and "--cpu" not in argv
    nothing_created(client, settings)


def test_preview_deepspeed_on_a_gpu_box_returns_both_files(client, settings, monkeypatch):
    """Pretend two GPUs and an installed deepspeed: the preview renders accelerate.yaml + deepspeed.json."""
    monkeypatch.setattr(client.app.state.runner, "gpu_probe", lambda: [0, 1])
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: object() if name == "deepspeed" else real_find_spec(name, *a, **k))
    body = {"base_model": "tiny-llama", "datasets": [upload(client)],
            "distributed": {"backend": "deepspeed", "zero_stage": 3, "offload_params": True}}
    resp = client.post("/api/v1/jobs/preview", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert set(out["files"]) == {"accelerate.yaml", "deepspeed.json"}
    acc = yaml.safe_load(out["files"]["accelerate.yaml"])
    assert acc["distributed_type"] == "DEEPSPEED" and acc["num_processes"] == 2
    assert json.loads(out["files"]["deepspeed.json"])["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert out["argv"][out["argv"].index("--config_file") + 1].endswith("accelerate.yaml")
    nothing_created(client, settings)


@pytest.mark.parametrize("dist,loc,words", [
    ({"gpus": [3]}, ["body", "distributed", "gpus"], "do not exist"),
    ({"backend": "fsdp"}, ["body", "distributed", "num_processes"], "2 or more"),  # one CPU process cannot shard
    ({"backend": "deepspeed", "zero_stage": 2, "offload_params": True}, ["body", "distributed"], "zero_stage 3"),
])
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/preview"])
def test_impossible_distributed_setups_are_422_at_submit(client, settings, dist, loc, words, path):
    body = {"base_model": "tiny-llama", "datasets": [upload(client)], "distributed": dist}
    resp = client.post(path, json=body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["errors"]
    assert any(e["loc"][: len(loc)] == loc and words in e["msg"] for e in detail), detail
    nothing_created(client, settings)


def test_deepspeed_without_the_package_is_422_with_a_hint(client, settings, monkeypatch):
    monkeypatch.setattr(client.app.state.runner, "gpu_probe", lambda: [0])
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "deepspeed" else real_find_spec(name, *a, **k))
    body = {"base_model": "tiny-llama", "datasets": [upload(client)], "distributed": {"backend": "deepspeed"}}
    resp = client.post("/api/v1/jobs", json=body)
    assert resp.status_code == 422, resp.text
    msg = " ".join(e["msg"] for e in resp.json()["errors"])
    assert "pip install deepspeed" in msg
    nothing_created(client, settings)


def test_job_gpus_follow_distributed_gpus():
    from backend.jobs.store import JobRow

    job = JobRow(id="j", name="j", state="queued", config={"distributed": {"gpus": [2], "num_processes": 1}},
                 run_dir="/r", created_at="")
    assert runner_mod.job_gpus(job, [0, 1, 2, 3]) == [2]
    plain = JobRow(id="k", name="k", state="queued", config={"datasets": ["d"]}, run_dir="/r", created_at="")
    assert runner_mod.job_gpus(plain, [0, 1]) == [0, 1]


@pytest.mark.slow
def test_two_process_cpu_job_runs_through_the_api(client, settings):
    """The runner's real spawn path: launch.json records the argv (2 processes, a free port), the job succeeds."""
    from tests.api.conftest import wait_for_state

    body = {"base_model": "tiny-llama", "datasets": [upload(client)], "max_steps": 2, "per_device_batch_size": 2,
            "gradient_accumulation_steps": 1, "cutoff_len": 64, "save_steps": None,
            "distributed": {"num_processes": 2}}
    resp = client.post("/api/v1/jobs", json=body)
    assert resp.status_code == 201, resp.text
    job = wait_for_state(client, resp.json()["id"], ("succeeded", "failed", "cancelled"))
    logs = client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"]
    assert job["state"] == "succeeded", (job["error"], logs[-3000:])
    launch = json.loads((settings.runs_dir / job["id"] / "launch.json").read_text())
    argv = launch["argv"]
    assert argv[argv.index("--num_processes") + 1] == "2" and "--main_process_port" in argv
    assert launch["gpus"] == [] and launch["files"] == [] and job["gpus"] == []
    assert logs.count("succeeded:") == 2  # both ranks finished
