"""Managing uploaded datasets against real jobs: delete is refused while a queued or running job uses the
dataset (a sleeping child process stands in for the engine), and allowed once the jobs are cancelled."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from backend.api.main import create_app

URL = "/api/v1/datasets"
ROWS = [{"instruction": f"Spell {w}", "input": "", "output": "-".join(w)} for w in ("cat", "dog", "owl")]


def sleeping_engine(job, gpus):
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def test_delete_refused_while_a_queued_or_running_job_uses_it(settings):
    app = create_app(settings, start_runner=False, spawn=sleeping_engine, register_builtins=False)
    with TestClient(app) as api:
        running_ds = api.post(URL, files={"file": ("first.json", json.dumps(ROWS))}).json()
        queued_ds = api.post(URL, files={"file": ("second.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))}).json()
        free_ds = api.post(URL, files={"file": ("third.json", json.dumps(ROWS))}).json()
        jobs = [api.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": [ref]}).json()
                for ref in (running_ds["id"], "second")]  # by id, and by name
        try:
            assert [api.get(f"/api/v1/jobs/{j['id']}").json()["state"] for j in jobs] == ["running", "queued"]
            for ds in (running_ds, queued_ds):
                resp = api.delete(f"{URL}/{ds['id']}")
                assert resp.status_code == 409, resp.text
                assert resp.json()["message"] == (f"dataset '{ds['name']}' is used by a queued or running job. Cancel "
                                                 "the job or wait for it to finish, then delete the dataset.")
                assert api.get(f"{URL}/{ds['id']}/download").status_code == 200  # still whole
            assert api.patch(f"{URL}/{queued_ds['id']}", json={"name": "renamed"}).json()["name"] == "renamed"
            assert api.delete(f"{URL}/{free_ds['id']}").status_code == 204
        finally:
            for job in reversed(jobs):
                api.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert {api.get(f"/api/v1/jobs/{j['id']}").json()["state"] for j in jobs} == {"cancelled"}
        for ds in (running_ds, queued_ds):
            assert api.delete(f"{URL}/{ds['id']}").status_code == 204
        assert api.get(URL).json()["count"] == 0
        assert not list(settings.datasets_dir.iterdir())
