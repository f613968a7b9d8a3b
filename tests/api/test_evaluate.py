"""Evaluate & predict through the API: real engine subprocesses on a tiny trained LoRA run and its base model."""

import json
import math
from pathlib import Path

import pytest

from backend.jobs.store import JobRow, utc_now
from tests.api.conftest import ALPACA_ROWS, wait_for_state

FIELDS = {"id", "created_at", "loss", "perplexity", "exact_match", "rouge_l", "bleu", "samples", "predictions",
          "model", "adapter", "dataset", "dataset_id", "seconds", "loss_tokens", "skipped", "cutoff_len"}


def upload(client, rows=ALPACA_ROWS, name="numbers"):
    resp = client.post("/api/v1/datasets", files={"file": (f"{name}.json", json.dumps(rows).encode())},
                       data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()


def predictions(client, url):
    resp = client.get(url)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson"), resp.text
    return [json.loads(line) for line in resp.text.splitlines()]


@pytest.mark.slow  # trains a tiny LoRA job, then runs three evaluate subprocesses
def test_evaluate_a_trained_run_against_its_base_model(client, settings):
    dataset = upload(client)
    job = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [dataset["id"]], "max_steps": 8, "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "learning_rate": 1e-2, "lr_scheduler": "constant",
        "lora_rank": 16}).json()
    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done
    body = {"dataset": "numbers", "max_samples": 4, "max_new_tokens": 6}

    tuned = client.post(f"/api/v1/jobs/{job['id']}/evaluate", json=body)
    assert tuned.status_code == 201, tuned.text
    tuned = tuned.json()
    base = client.post("/api/v1/evaluate", json={**body, "model": "tiny-llama"})
    assert base.status_code == 201, base.text
    base = base.json()

    for metrics in (tuned, base):
        assert FIELDS <= set(metrics)
        assert metrics["samples"] == metrics["predictions"] == 4 and metrics["dataset"] == "numbers"
        assert metrics["dataset_id"] == dataset["id"] and metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
        assert 0 <= metrics["rouge_l"] <= 1 and 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["bleu"] <= 1
    run_dir = Path(done["run_dir"])
    assert tuned["job_id"] == job["id"] and tuned["adapter"] == str(run_dir / "adapter")
    assert tuned["cutoff_len"] == 64 and base["cutoff_len"] == 1024  # the run's own cutoff; a base model's default
    assert base["base_model"] == "tiny-llama" and base["adapter"] is None
    assert tuned["loss_tokens"] == base["loss_tokens"]  # same rows, same mask: the losses compare like for like
    assert tuned["loss"] < base["loss"] - 0.5, (tuned["loss"], base["loss"])  # it learned these replies
    assert tuned["rouge_l"] > base["rouge_l"]  # and its greedy replies start like the references

    rows = predictions(client, f"/api/v1/jobs/{job['id']}/evaluations/{tuned['id']}/predictions")
    assert [r["prompt"] for r in rows] == [[{"role": "user", "content": r["instruction"]}] for r in ALPACA_ROWS[:4]]
    assert [r["reference"] for r in rows] == [r["output"] for r in ALPACA_ROWS[:4]]
    assert len(predictions(client, f"/api/v1/evaluations/{base['id']}/predictions")) == 4
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == [tuned["id"]]
    assert sorted(p.name for p in (run_dir / "evaluations" / tuned["id"]).iterdir()) == [
        "evaluate.log", "metrics.json", "predictions.jsonl"]

    listed = client.get(f"/api/v1/jobs/{job['id']}/evaluations").json()
    assert listed["count"] == 1 and listed["data"][0] == tuned
    assert client.get("/api/v1/evaluations", params={"model": "tiny-llama"}).json()["data"] == [base]
    assert client.get("/api/v1/evaluations", params={"model": "other"}).json()["count"] == 0

    # one evaluation per target at a time
    lock = client.app.state.evaluations._lock_for(f"job:{job['id']}")
    with lock:
        busy = client.post(f"/api/v1/jobs/{job['id']}/evaluate", json=body)
    assert busy.status_code == 409 and "being evaluated" in busy.json()["message"]

    # an engine failure is a 422 with the engine's own one-line error and hint; nothing half-written is left
    client.app.state.registry.require(dataset["id"]).path.write_text("not json\n", encoding="utf-8")
    failed = client.post("/api/v1/evaluate", json={**body, "model": "tiny-llama"})
    assert failed.status_code == 422, failed.text
    assert failed.json()["message"].startswith("evaluation failed: data.jsonl line 1: not JSON"), failed.json()
    assert failed.json()["hint"].startswith("each line must be"), failed.json()
    left = sorted(p.name for p in (settings.home / "evaluations").iterdir())
    assert left[0] == base["id"] and len(left) == 2 and left[1].startswith("failed-ev_")
    assert client.get("/api/v1/evaluations").json()["count"] == 1


def test_evaluate_error_codes(client, settings):
    store = client.app.state.jobs.store
    for job_id, state in (("job_failed", "failed"), ("job_bare", "succeeded")):
        store.insert(JobRow(id=job_id, name="x", state=state, config={}, created_at=utc_now(), output="adapter",
                            run_dir=str(settings.runs_dir / job_id)))
    body = {"dataset": "identity"}

    resp = client.post("/api/v1/jobs/job_nope/evaluate", json=body)
    assert resp.status_code == 404 and "job_nope" in resp.json()["message"]
    resp = client.post("/api/v1/jobs/job_failed/evaluate", json=body)
    assert resp.status_code == 409 and "job_failed is failed" in resp.json()["message"]
    resp = client.post("/api/v1/jobs/job_bare/evaluate", json=body)
    assert resp.status_code == 409 and "no trained output" in resp.json()["message"]
    resp = client.post("/api/v1/evaluate", json={**body, "model": "no-such-model"})
    assert resp.status_code == 404 and "tiny-llama" in resp.json()["message"]  # says what exists
    resp = client.post("/api/v1/evaluate", json={"model": "tiny-llama", "dataset": "no-such-data"})
    assert resp.status_code == 404 and "no-such-data" in resp.json()["message"]
    for bad in ({"max_samples": 0}, {"max_samples": 5000}, {"max_new_tokens": 0}, {"cutoff_len": 2}, {"dataset": ""}):
        resp = client.post("/api/v1/evaluate", json={"model": "tiny-llama", **body, **bad})
        assert resp.status_code == 422, (bad, resp.text)
    assert client.post("/api/v1/evaluate", json={"dataset": "identity"}).status_code == 422  # no model

    assert client.get("/api/v1/jobs/job_nope/evaluations").status_code == 404
    assert client.get("/api/v1/jobs/job_failed/evaluations").json() == {"data": [], "count": 0}
    for url in ("/api/v1/evaluations/ev_0000000000/predictions", "/api/v1/jobs/job_failed/evaluations/x/predictions",
                "/api/v1/evaluations/.tmp-ev_1/predictions"):
        assert client.get(url).status_code == 404, url
    assert not (settings.home / "evaluations").exists()  # nothing was started
