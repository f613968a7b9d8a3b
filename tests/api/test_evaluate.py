"""Evaluate & predict through the API: real engine subprocesses on a tiny trained LoRA run (a quarter of its data
held out) and its base model: side by side, on a dataset and on the run's held-out split."""

import json
import math
import threading
import time
from pathlib import Path

import pytest

from backend.config.rundir import write_resolved_run
from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.engine.mixture import split_examples
from backend.jobs.store import JobRow, utc_now
from tests.api.conftest import ALPACA_ROWS, wait_for_state

SEED = 7

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


def evaluate_watching_progress(client, job_id: str, body: dict):
    """POST the evaluation in a thread and poll its progress meanwhile: (response, [(phase, fraction), ...])."""
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(
        response=client.post(f"/api/v1/jobs/{job_id}/evaluate", json=body)))
    thread.start()
    seen: list[tuple[str, float]] = []
    while thread.is_alive():
        state = client.get(f"/api/v1/jobs/{job_id}/evaluations/progress").json()
        if state["running"] and state["phase"] and (state["phase"], state["fraction"]) not in seen:
            seen.append((state["phase"], state["fraction"]))
        time.sleep(0.1)
    thread.join()
    return answer["response"], seen


def check_side_by_side(tuned: dict, base: dict, rows: list[dict], base_rows: list[dict]) -> None:
    """The run's ``base`` numbers and base predictions are the base-only evaluation's (same rows, same mask);
    delta = run - base."""
    assert [r["base_prediction"] for r in rows] == [r["prediction"] for r in base_rows]
    assert [r["base_rouge_l"] for r in rows] == [r["rouge_l"] for r in base_rows]
    for key in ("loss", "perplexity", "rouge_l", "exact_match", "bleu", "loss_tokens", "predictions"):
        assert tuned["base"][key] == pytest.approx(base[key], rel=1e-5), key
    assert tuned["delta"]["loss"] == pytest.approx(tuned["loss"] - base["loss"])
    assert tuned["delta"]["rouge_l"] == pytest.approx(tuned["rouge_l"] - base["rouge_l"])
    assert tuned["base"]["model"] == base["model"]


@pytest.mark.slow  # trains a tiny LoRA job (a quarter held out), then runs four evaluate subprocesses
def test_evaluate_a_trained_run_against_its_base_model(client, settings):
    dataset = upload(client)
    job = client.post("/api/v1/jobs", json={
        "base_model": "tiny-llama", "datasets": [dataset["id"]], "max_steps": 8, "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1, "cutoff_len": 64, "learning_rate": 1e-2, "lr_scheduler": "constant",
        "lora_rank": 16, "val_size": 0.25, "seed": SEED, "save_steps": None}).json()
    done = wait_for_state(client, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done
    body = {"dataset": "numbers", "max_samples": 4, "max_new_tokens": 6}

    tuned, seen = evaluate_watching_progress(client, job["id"], {**body, "with_base": True})
    assert tuned.status_code == 201, tuned.text
    tuned = tuned.json()
    # the progress moves through the run's and then the base model's phases, never backwards (what a 0.1 s poll
    # sees of it depends on the machine: on a quiet one the tiny model's phases can pass between two polls)
    sides = [phase.split(":")[0] for phase, _ in seen]
    assert sides == sorted(sides, key=["run", "base"].index), seen
    assert [fraction for _, fraction in seen] == sorted(fraction for _, fraction in seen), seen
    assert client.get(f"/api/v1/jobs/{job['id']}/evaluations/progress").json() == {
        "running": False, "eval_id": None, "phase": None, "phase_index": None, "phases": None, "done": None,
        "total": None, "fraction": None}
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
    check_side_by_side(tuned, base, rows, predictions(client, f"/api/v1/evaluations/{base['id']}/predictions"))
    # each row says whether the run trained on it: all but the held-out ones
    _, held_out = split_examples(ALPACA_ROWS, 0.25, f"split:{SEED}:{dataset['id']}")
    assert [r["in_training"] for r in rows] == [r not in held_out for r in ALPACA_ROWS[:4]]
    assert tuned["split"] == "dataset" and tuned["in_training"] == sum(r not in held_out for r in ALPACA_ROWS[:4])
    assert base["in_training"] is None  # a base model trained on nothing of ours
    assert len(predictions(client, f"/api/v1/evaluations/{base['id']}/predictions")) == 4
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == [tuned["id"]]
    assert sorted(p.name for p in (run_dir / "evaluations" / tuned["id"]).iterdir()) == [
        "evaluate.log", "metrics.json", "predictions.jsonl"]

    listed = client.get(f"/api/v1/jobs/{job['id']}/evaluations").json()
    assert listed["count"] == 1 and listed["data"][0] == tuned
    assert client.get("/api/v1/evaluations", params={"model": "tiny-llama"}).json()["data"] == [base]
    assert client.get("/api/v1/evaluations", params={"model": "other"}).json()["count"] == 0

    # no dataset: the run's held-out split, exactly the rows training kept out (the engine's split for the seed)
    held = client.post(f"/api/v1/jobs/{job['id']}/evaluate", json={"max_new_tokens": 3})
    assert held.status_code == 201, held.text
    held = held.json()
    assert len(held_out) == 4 and held["samples"] == 4
    assert (held["split"], held["dataset"], held["dataset_id"], held["in_training"]) == (
        "held_out", "held-out split", None, 0)
    rows = predictions(client, f"/api/v1/jobs/{job['id']}/evaluations/{held['id']}/predictions")
    assert [r["reference"] for r in rows] == [r["output"] for r in held_out]
    assert not any(r["in_training"] for r in rows) and held["base"] is None and held["delta"] is None

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


def fake_run(settings, store, job_id: str, **config) -> None:
    """A succeeded job whose run dir has run.yaml and an adapter marker: enough for the checks made before any
    engine starts."""
    run_dir = settings.runs_dir / job_id
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    record = settings.home / "datasets"
    run = ResolvedRun(run_id=job_id, config=RunConfig.model_validate({"base_model": "tiny-llama", "datasets": ["x"],
                                                                      **config}),
                      model_path=str(settings.home), datasets=[DatasetRef(id="x", name="x", path=str(record))])
    write_resolved_run(run_dir, run)
    store.insert(JobRow(id=job_id, name=job_id, state="succeeded", config={}, created_at=utc_now(), output="adapter",
                        run_dir=str(run_dir)))


def test_what_a_run_can_be_evaluated_on_is_checked_before_any_engine_starts(client, settings):
    store = client.app.state.jobs.store
    fake_run(settings, store, "job_sft")
    fake_run(settings, store, "job_rm", stage="rm", datasets=["preference_demo"])

    resp = client.post("/api/v1/jobs/job_sft/evaluate", json={})  # no dataset and nothing held out
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"] == ["body", "dataset"]
    assert "held no rows out of training" in resp.json()["message"] and "val_size" in resp.json()["hint"]

    resp = client.post("/api/v1/jobs/job_rm/evaluate", json={"dataset": "identity"})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["errors"][0]["loc"] == ["body", "dataset"]
    assert "reward model (stage 'rm')" in body["message"] and "chosen/rejected pairs" in body["message"]
    assert "preference" in body["hint"]
    resp = client.post("/api/v1/jobs/job_rm/evaluate", json={"dataset": "no-such-data"})
    assert resp.status_code == 404, resp.text
    for bad in ({"dataset": ""}, {"with_base": "maybe"}, {"max_samples": 0}):
        resp = client.post("/api/v1/jobs/job_sft/evaluate", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
    assert not (settings.runs_dir / "job_sft" / "evaluations").exists()  # nothing was started
    assert client.get("/api/v1/jobs/job_rm/evaluations").json() == {"data": [], "count": 0}
