"""Continue from a finished run (init_from_run): real tiny subprocess runs through the API. The continued run
starts from its parent's adapter (the loaded tensors are the parent's file, bit for bit) so its first loss is the
parent's last, not the base's first; lineage on GET /jobs/{id}; what cannot continue what is a 422 naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.conftest import ALPACA_ROWS, wait_for_state

RUN = {"base_model": "tiny-llama", "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "cutoff_len": 64,
       "save_steps": None, "learning_rate": 5e-3, "lr_scheduler": "constant", "seed": 0, "compute_type": "fp32",
       "method": {"name": "lora", "rank": 8, "alpha": 16, "dropout": 0.0}}


def losses(client, job_id: str) -> list[float]:
    rows = client.get(f"/api/v1/jobs/{job_id}/metrics").json()["data"]
    return [row["loss"] for row in sorted(rows, key=lambda r: r["step"]) if "loss" in row]


def problem(resp) -> tuple[list, str]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["errors"][0]
    return error["loc"], error["msg"]


def test_continued_run_starts_from_the_parents_adapter(client):
    import torch
    from safetensors.torch import load_file

    from backend.engine.init_from import tensors_digest

    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    parent = client.post("/api/v1/jobs", json={**RUN, "datasets": [ds["id"]], "max_steps": 24}).json()
    parent = wait_for_state(client, parent["id"], ("succeeded", "failed", "cancelled"))
    assert parent["state"] == "succeeded", parent
    parent_losses = losses(client, parent["id"])
    assert parent_losses[0] - parent_losses[-1] > 1.0, parent_losses  # it learned: the two ends are far apart
    adapter = load_file(str(Path(parent["run_dir"]) / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in name and torch.count_nonzero(t) for name, t in adapter.items())  # not a fresh adapter

    child = client.post("/api/v1/jobs", json={**RUN, "datasets": [ds["id"]], "max_steps": 3,
                                              "init_from_run": parent["id"]})
    assert child.status_code == 201, child.text
    child = child.json()
    assert child["parent_run"] == parent["id"]
    # a run still queued or running cannot be continued
    loc, msg = problem(client.post("/api/v1/jobs", json={**RUN, "datasets": [ds["id"]], "init_from_run": child["id"]}))
    assert loc == ["body", "init_from_run"] and "only a succeeded run can be continued" in msg
    child = wait_for_state(client, child["id"], ("succeeded", "failed", "cancelled"))
    assert child["state"] == "succeeded", child
    assert child["parent_run"] == parent["id"]
    loaded = child["engine"]["init_from"]
    assert loaded["run"] == parent["id"] and loaded["tensors"] == len(adapter)
    assert loaded["digest"] == tensors_digest(adapter)  # the adapter it started from is the parent's, exactly
    first = losses(client, child["id"])[0]
    # the first loss is the parent's last (a different batch, so near it), far from where the base started
    assert abs(first - parent_losses[-1]) < 0.35 * abs(first - parent_losses[0]), (first, parent_losses)
    lineage = client.get(f"/api/v1/jobs/{child['id']}/lineage").json()  # dataset -> run -> export
    assert lineage["parent"] == {"id": parent["id"], "name": parent["name"], "state": "succeeded", "exists": True}
    assert [d["id"] for d in lineage["datasets"]] == [ds["id"]] and len(lineage["datasets"][0]["sha256"]) == 64
    assert [c["id"] for c in client.get(f"/api/v1/jobs/{parent['id']}/lineage").json()["children"]] == [child["id"]]
    log = client.get(f"/api/v1/jobs/{child['id']}/logs").json()["text"]
    assert f"continued from {parent['run_dir']}/adapter: {len(adapter)} adapter tensors loaded" in log

    # what cannot continue this parent: 422 naming the field to fix
    body = {**RUN, "datasets": [ds["id"]], "init_from_run": parent["id"]}
    loc, msg = problem(client.post("/api/v1/jobs", json={**body, "method": {**RUN["method"], "rank": 16}}))
    assert loc == ["body", "method", "rank"] and "set method.rank to 8" in msg
    loc, msg = problem(client.post("/api/v1/jobs", json={**body, "method": {"name": "full"}}))
    assert loc == ["body", "method", "name"] and "merge the run" in msg
    loc, msg = problem(client.post("/api/v1/jobs", json={**body, "method": {**RUN["method"], "init": "pissa"}}))
    assert loc == ["body", "method", "init"]
    loc, msg = problem(client.post("/api/v1/jobs", json={**body, "init_from_run": "job_0000000000"}))
    assert loc == ["body", "init_from_run"] and "no run with id 'job_0000000000'" in msg
    loc, _ = problem(client.post("/api/v1/jobs", json={**body, "init_from_run": "../etc"}))
    assert loc == ["body", "init_from_run"]
    assert len(client.get("/api/v1/jobs").json()["data"]) == 2  # nothing refused was stored


def test_continued_full_run_starts_from_the_parents_model(client):
    ds = client.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(ALPACA_ROWS).encode())}).json()
    full = {**RUN, "method": {"name": "full"}, "learning_rate": 1e-3, "datasets": [ds["id"]]}
    parent = client.post("/api/v1/jobs", json={**full, "max_steps": 16}).json()
    parent = wait_for_state(client, parent["id"], ("succeeded", "failed", "cancelled"))
    assert parent["state"] == "succeeded" and parent["output"] == "model", parent
    parent_losses = losses(client, parent["id"])
    assert parent_losses[0] - parent_losses[-1] > 1.0, parent_losses

    # a new adapter cannot continue a whole model (that is a new base): 422 saying how
    loc, msg = problem(client.post("/api/v1/jobs", json={**RUN, "datasets": [ds["id"]], "init_from_run": parent["id"]}))
    assert loc == ["body", "method", "name"] and "set base_model to its model folder" in msg

    child = client.post("/api/v1/jobs", json={**full, "max_steps": 2, "init_from_run": parent["id"]}).json()
    child = wait_for_state(client, child["id"], ("succeeded", "failed", "cancelled"))
    assert child["state"] == "succeeded" and child["parent_run"] == parent["id"], child
    assert child["engine"]["init_from"] == {"path": f"{parent['run_dir']}/model", "run": parent["id"]}
    first = losses(client, child["id"])[0]
    assert abs(first - parent_losses[-1]) < 0.35 * abs(first - parent_losses[0]), (first, parent_losses)
