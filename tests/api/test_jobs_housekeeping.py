"""Run housekeeping through the real API: DELETE /jobs/{id} (409 while queued or running; removes the run dir with
its outputs and merged model), PATCH /jobs/{id} (name, tags, notes; bounded), GET /jobs?tag=&q= filters, and a
database from before tags/notes gaining the columns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from backend.jobs.store import JobStore
from tests.api.conftest import ALPACA_ROWS, wait_for_state

TINY = {"base_model": "tiny-llama", "max_steps": 2, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
        "cutoff_len": 64}


def test_delete_rename_tag_and_filter_runs(client):
    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    done_job = client.post("/api/v1/jobs", json={**TINY, "datasets": [ds["id"]], "name": "first"}).json()
    waiting = client.post("/api/v1/jobs", json={**TINY, "datasets": [ds["id"]], "max_steps": 500}).json()
    for job in (done_job, waiting):  # queued or running: refused, nothing removed
        resp = client.delete(f"/api/v1/jobs/{job['id']}")
        assert resp.status_code == 409 and "cancel it first" in resp.json()["message"], resp.text
        assert Path(job["run_dir"]).is_dir()

    done = wait_for_state(client, done_job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done
    assert client.post(f"/api/v1/jobs/{waiting['id']}/cancel").json()["state"] in ("cancelled", "running")
    wait_for_state(client, waiting["id"], ("cancelled",))
    assert client.post(f"/api/v1/jobs/{done['id']}/merge").status_code == 200  # an export inside the run dir

    patched = client.patch(f"/api/v1/jobs/{done['id']}", json={"name": "  numbers v1 ", "tags": ["baseline", "lr-sweep",
                                                                                               "baseline"],
                                                                "notes": "first try; loss still falling"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "numbers v1" and body["tags"] == ["baseline", "lr-sweep"]
    assert body["notes"] == "first try; loss still falling" and body["state"] == "succeeded"
    assert client.patch(f"/api/v1/jobs/{done['id']}", json={"notes": ""}).json()["tags"] == ["baseline", "lr-sweep"]
    for bad, field in (({"name": ""}, "name"), ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
                       ({"tags": ["ok", "no\nnewline"]}, "tags"), ({"notes": "x" * 10_001}, "notes"),
                       ({"state": "queued"}, "state")):
        resp = client.patch(f"/api/v1/jobs/{done['id']}", json=bad)
        assert resp.status_code == 422 and field in resp.json()["errors"][0]["loc"], (bad, resp.text)
    assert client.patch("/api/v1/jobs/job_nope", json={"name": "x"}).status_code == 404

    def listed(**params) -> list[str]:
        return [job["id"] for job in client.get("/api/v1/jobs", params=params).json()["data"]]

    assert listed(tag="BASELINE") == [done["id"]] and listed(tag="base") == []
    assert listed(q="numbers V1") == [done["id"]] and listed(q=waiting["id"][-6:]) == [waiting["id"]]
    assert set(listed()) == {done["id"], waiting["id"]} and listed(q="tiny-llama", tag="lr-sweep") == [done["id"]]
    assert client.get("/api/v1/jobs", params={"tag": "x" * 41}).status_code == 422

    run_dir = Path(done["run_dir"])
    assert (run_dir / "adapter").is_dir() and (run_dir / "merged" / "config.json").is_file()
    for job_id, path in ((done["id"], run_dir), (waiting["id"], Path(waiting["run_dir"]))):
        resp = client.delete(f"/api/v1/jobs/{job_id}")
        assert resp.status_code == 204 and resp.content == b"", resp.text
        assert not path.exists() and client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert listed() == [] and not [p for p in run_dir.parent.iterdir()]  # nothing left aside either
    assert client.delete(f"/api/v1/jobs/{done['id']}").status_code == 404


def test_an_older_database_gains_tags_and_notes(tmp_path):
    db = tmp_path / "tunesmith.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, config_json "
                     "TEXT NOT NULL, run_dir TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT, finished_at "
                     "TEXT, pid INTEGER, gpus TEXT NOT NULL DEFAULT '[]', error TEXT, hint TEXT, output TEXT, "
                     "cancel_requested INTEGER NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO jobs (id, name, state, config_json, run_dir, created_at) VALUES "
                     "('job_old', 'old', 'succeeded', '{}', '/x', '2026-01-01')")
    store = JobStore(db)
    old = store.get("job_old")
    assert old is not None and old.tags == [] and old.notes == ""
    assert store.update("job_old", tags=["kept"], notes="n") and store.get("job_old").tags == ["kept"]
