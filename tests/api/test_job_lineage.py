"""GET /api/v1/jobs/{id}/lineage: dataset -> run -> export, through the real API (no training: a queued job's
run.yaml already names its datasets) and the pure report over rows (parent, children, a deleted parent)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.jobs.lineage_report import lineage
from backend.jobs.store import JobRow
from tests.api.conftest import ALPACA_ROWS


@pytest.fixture
def queued_api(settings):
    with TestClient(create_app(settings, start_runner=False)) as client:
        yield client


def test_a_runs_lineage_names_its_datasets_with_their_hash(queued_api):
    train = queued_api.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())})
    val = queued_api.post("/api/v1/datasets", files={"file": ("held.json", json.dumps(ALPACA_ROWS[:4]).encode())})
    train, val = train.json(), val.json()
    job = queued_api.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": [train["name"]],
                                                "val_datasets": [val["id"]], "max_steps": 2}).json()
    body = queued_api.get(f"/api/v1/jobs/{job['id']}/lineage")
    assert body.status_code == 200, body.text
    body = body.json()
    assert body["job_id"] == job["id"] and body["parent"] is None and body["children"] == [] and body["exports"] == []
    assert [(d["id"], d["name"], d["role"], d["num_rows"]) for d in body["datasets"]] == [
        (train["id"], "numbers", "train", 16), (val["id"], "held", "validation", 4)]
    data = Path(queued_api.app.state.jobs.registry.get(train["id"]).path).read_bytes()
    assert body["datasets"][0]["sha256"] == hashlib.sha256(data).hexdigest()  # the hash of the data it trains on
    assert all(d["registered"] for d in body["datasets"])
    missing = queued_api.get("/api/v1/jobs/job_000000000000/lineage")
    assert missing.status_code == 404 and missing.json()["error_count"] >= 1


def _row(job_id: str, created: str, state: str = "succeeded", parent: str | None = None) -> JobRow:
    return JobRow(id=job_id, name=f"run {job_id}", state=state, config={"init_from_run": parent, "base_model": "m"},
                  run_dir=f"/nowhere/{job_id}", created_at=created)


def test_the_report_links_parent_children_and_exports_and_survives_deletions():
    parent, child = _row("job_p", "1"), _row("job_c", "2", parent="job_p")
    grandchild, orphan = _row("job_g", "3", "running", parent="job_c"), _row("job_o", "4", parent="job_gone")
    run = ResolvedRun(run_id="job_c", config=RunConfig(base_model="m", datasets=["d1"]), model_path="/m",
                      datasets=[DatasetRef(id="ds_1", name="d1", path="/d1.jsonl", num_rows=5, weight=0.5)])
    report = lineage(child, run, [parent, child, grandchild, orphan],
                     lambda _id: None, [{"id": "gguf-q8_0", "state": "succeeded", "format": "gguf", "bytes": 10}])
    assert report["parent"] == {"id": "job_p", "name": "run job_p", "state": "succeeded", "exists": True}
    assert report["children"] == [{"id": "job_g", "name": "run job_g", "state": "running", "exists": True}]
    assert report["datasets"][0]["registered"] is False and report["datasets"][0]["sha256"] is None  # deleted
    assert report["exports"] == [{"id": "gguf-q8_0", "state": "succeeded", "format": "gguf", "quantization": None,
                                  "dtype": None, "bytes": 10}]
    gone = lineage(orphan, None, [orphan], lambda _id: None, [])
    assert gone["parent"] == {"id": "job_gone", "name": None, "state": None, "exists": False}
    assert gone["datasets"] == [] and gone["base_model"] == "m"
