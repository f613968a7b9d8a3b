"""Mixtures and validation datasets at submit time (what is refused, with what message) and end to end: a
weighted mixture with a validation dataset trains through POST /api/v1/jobs and logs eval_loss."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend.config.schema import RunConfig
from backend.fsio import iter_jsonl
from backend.jobs.service import JobConfigError, JobService
from backend.jobs.store import JobRow
from backend.settings import Settings
from tests.api.conftest import ALPACA_ROWS, wait_for_state

FORMATS = {"chat": "messages", "pairs": "preference", "kto": "kto", "corpus": "text", "val": "alpaca"}


@pytest.fixture
def service(tmp_path, tiny_model_dir):
    """A job service over a registry holding one dataset of each kind (ids ds_<name>)."""
    records = {}
    for name, fmt in FORMATS.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("{}\n")
        records[name] = records[f"ds_{name}"] = SimpleNamespace(id=f"ds_{name}", name=name, path=path, num_rows=10,
                                                                format=fmt)
    registry = SimpleNamespace(get=records.get)
    runner = SimpleNamespace(gpu_probe=lambda: [])
    return JobService(Settings.from_env(tmp_path / "home"), store=None, runner=runner, registry=registry)


def resolve(service, tiny_model_dir, **fields):
    config = RunConfig.model_validate({"base_model": str(tiny_model_dir), **fields})
    return service.resolve(config, "job_x")


def refused(service, tiny_model_dir, **fields) -> JobConfigError:
    with pytest.raises(JobConfigError) as err:
        resolve(service, tiny_model_dir, **fields)
    return err.value


def test_resolved_run_carries_weights_caps_and_formats(service, tiny_model_dir):
    run = resolve(service, tiny_model_dir, datasets=[{"id": "chat", "weight": 0.7, "max_samples": 50},
                                                     {"id": "ds_pairs", "weight": 0.3}],
                  max_samples=200, val_datasets=["val"])
    assert [(r.id, r.format, r.weight, r.max_samples) for r in run.datasets] == [
        ("ds_chat", "messages", 0.7, 50), ("ds_pairs", "preference", 0.3, 200)]  # the global cap fills in
    assert [(r.id, r.format, r.max_samples) for r in run.val_datasets] == [("ds_val", "alpaca", 200)]
    # names become ids in the stored config; the entry form is kept
    assert run.config.model_dump(mode="json")["datasets"] == [
        {"id": "ds_chat", "weight": 0.7, "max_samples": 50}, {"id": "ds_pairs", "weight": 0.3, "max_samples": None}]
    assert run.config.val_datasets == ["ds_val"]
    assert resolve(service, tiny_model_dir, datasets=["chat", "kto"]).config.datasets == ["ds_chat", "ds_kto"]


def test_kto_and_preference_datasets_are_allowed_in_sft_raw_text_only_in_pt(service, tiny_model_dir):
    assert [r.format for r in resolve(service, tiny_model_dir, datasets=["kto", "pairs"]).datasets] == ["kto",
                                                                                                         "preference"]
    err = refused(service, tiny_model_dir, datasets=["chat", "corpus"])
    assert err.loc == ("datasets", 1) and "raw text" in err.message and "use stage 'pt'" in err.message
    err = refused(service, tiny_model_dir, datasets=["chat"], val_datasets=["corpus"])
    assert err.loc == ("val_datasets", 0) and "use stage 'pt'" in err.message
    assert resolve(service, tiny_model_dir, datasets=["corpus", "chat"], stage="pt").datasets[0].format == "text"


@pytest.mark.parametrize("fields,loc,needle", [
    ({"datasets": ["chat", "nope"]}, ("datasets", 1), "unknown dataset 'nope'; upload it first"),
    ({"datasets": [{"id": "nope", "weight": 1}]}, ("datasets", 0), "unknown dataset 'nope'"),
    ({"datasets": ["chat"], "val_datasets": ["nope"]}, ("val_datasets", 0), "unknown dataset 'nope'"),
    ({"datasets": ["chat", "ds_chat"]}, ("datasets", 1), "listed twice; list it once and give it a larger weight"),
    ({"datasets": ["chat"], "val_datasets": ["ds_chat"]}, ("val_datasets", 0),
     "both a training and a validation dataset"),
])
def test_dataset_problems_are_refused_naming_the_entry(service, tiny_model_dir, fields, loc, needle):
    err = refused(service, tiny_model_dir, **fields)
    assert err.loc == loc and needle in err.message


def test_datasets_in_use_include_mixture_entries_and_validation_datasets(tmp_path):
    jobs = [JobRow(id="j1", name="j1", state="queued", run_dir="/r", created_at="",
                   config={"datasets": [{"id": "ds_a", "weight": 1}, "ds_b"], "val_datasets": ["ds_v"]}),
            JobRow(id="j2", name="j2", state="running", run_dir="/r", created_at="", config={"datasets": ["ds_c"]})]
    store = SimpleNamespace(list=lambda states=None: jobs)
    service = JobService(Settings.from_env(tmp_path / "home"), store=store, runner=None, registry=None)
    assert service.datasets_in_use() == {"ds_a", "ds_b", "ds_v", "ds_c"}


# -- through the HTTP API ------------------------------------------------------------------------------------
def upload(client, rows, name):
    resp = client.post("/api/v1/datasets", files={"file": (f"{name}.json", json.dumps(rows).encode(), "application/json")},
                       data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.mark.parametrize("patch,loc,needle", [
    ({"datasets": [{"id": "numbers", "weight": -0.5}]}, ["body", "datasets", 0, "entry", "weight"], "greater than"),
    ({"datasets": [{"id": "numbers", "weight": 0}]}, ["body", "datasets"], "every weight is 0"),
    ({"val_size": 0.2, "val_datasets": ["numbers"]}, ["body", "val_datasets"], "both set"),
    ({"val_datasets": ["numbers"]}, ["body", "val_datasets", 0], "both a training and a validation dataset"),
])
def test_bad_mixture_is_422_and_writes_nothing(client, settings, patch, loc, needle):
    upload(client, ALPACA_ROWS, "numbers")
    resp = client.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": ["numbers"], **patch})
    assert resp.status_code == 422, resp.text
    errors = {tuple(e["loc"]): e["msg"] for e in resp.json()["errors"]}
    assert tuple(loc) in errors and needle in errors[tuple(loc)], errors
    assert client.get("/api/v1/jobs").json()["count"] == 0 and list(settings.runs_dir.iterdir()) == []


@pytest.mark.slow
def test_weighted_mixture_with_a_validation_dataset_trains_and_logs_eval_loss(client):
    words = upload(client, ALPACA_ROWS, "numbers")
    colours = upload(client, [{"instruction": f"Name colour {i}.", "output": f"Colour {i} is blue."}
                              for i in range(6)], "colours")
    held = upload(client, [{"instruction": f"Say the number {i} in words.", "output": f"The number is {i}."}
                           for i in range(20, 24)], "held-out")
    resp = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [{"id": words, "weight": 2}, {"id": "colours", "weight": 1}],
        "val_datasets": ["held-out"], "max_steps": 4, "eval_steps": 2, "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "learning_rate": 5e-3})
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["config"]["datasets"] == [{"id": words, "weight": 2.0, "max_samples": None},
                                         {"id": colours, "weight": 1.0, "max_samples": None}]
    assert job["config"]["val_datasets"] == [held]
    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    logs = client.get(f"/api/v1/jobs/{job['id']}/logs").json()["text"]
    assert done["state"] == "succeeded", (done["error"], logs)
    # colours (6 rows at 1/3) runs out first: 18 examples, 12 of them from numbers
    assert f"dataset 'numbers' ({words}) (chat): 16 rows read, weight 2 (67%): 12 drawn -> 12 train examples" in logs
    assert f"dataset 'colours' ({colours}) (chat): 6 rows read, weight 1 (33%): 6 drawn -> 6 train examples" in logs
    assert f"validation dataset 'held-out' ({held}) (chat): 4 rows read -> 4 eval examples" in logs
    events = list(iter_jsonl(Path(job["run_dir"]) / "events.jsonl"))
    evals = [row for row in events if "eval_loss" in row]
    assert [row["step"] for row in evals] == [2, 4] and all(row["eval_loss"] > 0 for row in evals)
    assert client.delete(f"/api/v1/datasets/{held}").status_code == 204  # finished: no longer in use
