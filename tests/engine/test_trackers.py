"""Experiment trackers on real tiny runs (CPU): TensorBoard event files in the run dir hold the loss scalars and
the run's config; MLflow, submitted through the real API, writes a run with its metrics and config into the
studio home's file store; a tracker whose package is missing is a 422 naming the install command."""

from __future__ import annotations

import json

import pytest

from backend.config.schema import RunConfig
from tests.engine.cpu_jobs import studio, submit, upload_conversations, wait_done
from tests.engine.tiny_runs import make_run_dir, read_result, run_engine

pytestmark = pytest.mark.slow


def test_tensorboard_event_files_hold_the_losses_and_the_config(tmp_path, tiny_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = make_run_dir(tmp_path, tiny_model_dir, report_to="tensorboard", val_size=0.25, eval_steps=3)
    done = run_engine("train", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert read_result(run_dir)["tracker"] == {"name": "tensorboard", "location": str(run_dir / "tensorboard")}
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    rows = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    train = {row["step"]: row["loss"] for row in rows if "loss" in row}
    logged = {event.step: event.value for event in events.Scalars("train/loss")}
    assert logged.keys() == train.keys() == {1, 2, 3, 4}
    assert all(logged[step] == pytest.approx(train[step], rel=1e-5) for step in train)
    evals = {event.step for event in events.Scalars("eval/loss")}
    assert evals == {3, 4}  # every eval_steps, and the last step's eval inside training (before the writer closed)
    text = events.Tensors("tunesmith/run_config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text)["report_to"] == "tensorboard" and json.loads(text)["max_steps"] == 4


def test_mlflow_run_in_the_studio_home_has_metrics_and_config(tmp_path, tiny_model_dir, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this reader; the engine sets it for its own file store

    with studio(tmp_path, tiny_model_dir) as client:
        dataset = upload_conversations(client)
        job_id = submit(client, dataset, report_to="mlflow", val_size=0.25, eval_steps=2)
        job = wait_done(client, job_id)
    store = tmp_path / "home" / "mlruns"
    mlflow = MlflowClient(store.as_uri())
    experiment = mlflow.get_experiment_by_name("tunesmith")
    (run,) = mlflow.search_runs([experiment.experiment_id])
    # the run the Runs card names (engine.json): the very MLflow run that holds the metrics
    assert job["engine"]["tracker"] == {"name": "mlflow", "location": store.as_uri(), "run_id": run.info.run_id,
                                        "experiment_id": experiment.experiment_id}
    assert run.info.run_name == job_id and run.data.tags["tunesmith.run_id"] == job_id
    losses = [m.value for m in sorted(mlflow.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)]
    metrics = client_metrics(tmp_path, job_id)
    assert losses == pytest.approx([row["loss"] for row in metrics if "loss" in row], rel=1e-5)
    assert run.data.metrics["eval_loss"] == pytest.approx([r["eval_loss"] for r in metrics if "eval_loss" in r][-1])
    assert "train_loss" in run.data.metrics  # the trainer's final summary
    assert run.data.params["tunesmith.report_to"] == "mlflow" and run.data.params["tunesmith.max_steps"] == "4"


def client_metrics(tmp_path, job_id: str) -> list[dict]:
    path = tmp_path / "home" / "runs" / job_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_missing_tracker_package_is_a_422_with_the_install_command(tmp_path, tiny_model_dir, monkeypatch):
    from backend.jobs import checks

    real = checks.installed
    monkeypatch.setattr(checks, "installed", lambda name: False if name == "wandb" else real(name))
    with studio(tmp_path, tiny_model_dir) as client:
        dataset = upload_conversations(client)
        resp = client.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": [dataset],
                                                 "report_to": "wandb"})
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["errors"][0]["loc"][-1] == "report_to" and "pip install wandb" in body["errors"][0]["msg"]
        assert client.get("/api/v1/jobs").json()["count"] == 0  # nothing stored


@pytest.mark.parametrize("fields", [{"mlflow_tracking_uri": "http://localhost:5000"},
                                    {"report_to": "tensorboard", "mlflow_tracking_uri": "file:/tmp/x"}])
def test_tracking_uri_only_with_mlflow(fields):
    with pytest.raises(ValueError, match="mlflow_tracking_uri applies to report_to 'mlflow'"):
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], **fields})
