"""Experiment trackers (``report_to``): TensorBoard event files in the run dir, MLflow (by default a file store
in the studio home), Weights & Biases (offline into the run dir unless WANDB_API_KEY is set). transformers'
own integration callbacks log the trainer's metrics; :class:`RunConfigToTracker` adds the run's Tunesmith config,
and :class:`EvaluateAtLastStep` makes the last evaluation happen inside training, before the trackers close
their runs (an evaluate() after train() would open a second MLflow run)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from transformers import TrainerCallback

from backend.config.schema import ResolvedRun
from backend.config.trackers import MLFLOW_EXPERIMENT, TENSORBOARD_DIR, TRACKER_PACKAGES, WANDB_PROJECT
from backend.engine.failures import EngineError


def prepare_tracker(run: ResolvedRun, run_dir: Path, facts: dict) -> None:
    """Check the tracker's package and point it at its store through the environment variables transformers'
    callbacks read; record where it writes in ``facts["tracker"]``."""
    name = run.config.report_to
    if name == "none":
        return
    module, install = TRACKER_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise EngineError(f"report_to {name!r} needs the {module} package, which is not installed", install)
    if name == "tensorboard":
        location = str(run_dir / TENSORBOARD_DIR)
        os.environ["TENSORBOARD_LOGGING_DIR"] = location
    elif name == "mlflow":
        if not run.tracker_uri:
            raise EngineError("report_to 'mlflow' and run.yaml names no tracking URI (tracker_uri)",
                              "submit the run through the studio (it resolves the URI) or set mlflow_tracking_uri")
        location = run.tracker_uri
        os.environ["MLFLOW_TRACKING_URI"] = location
        os.environ["MLFLOW_EXPERIMENT_NAME"] = MLFLOW_EXPERIMENT
        os.environ["MLFLOW_TAGS"] = json.dumps({"tunesmith.run_id": run.run_id})
        if location.startswith("file:"):  # MLflow 3 keeps its file store only for those who opt in
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    else:
        location = str(run_dir / "wandb")
        os.environ["WANDB_DIR"] = str(run_dir)
        os.environ.setdefault("WANDB_PROJECT", WANDB_PROJECT)
        if not os.environ.get("WANDB_API_KEY"):
            os.environ["WANDB_MODE"] = "offline"  # no key: runs stay in the run dir (wandb sync uploads them)
    facts["tracker"] = {"name": name, "location": location,
                        **({"mode": os.environ.get("WANDB_MODE", "online")} if name == "wandb" else {})}
    print(f"tracker: {name} -> {location}", flush=True)


def tracker_args(run: ResolvedRun) -> dict:
    """The trainer arguments of the run's tracker: report_to and the run name trackers show."""
    name = run.config.report_to
    return {"report_to": "none" if name == "none" else [name], "run_name": run.run_id}


class RunConfigToTracker(TrainerCallback):
    """Logs the run's Tunesmith config (and its datasets) to the tracker when training begins, after transformers'
    callback opened its run: a TensorBoard text, an MLflow artifact + params, W&B config. Given the run's ``facts``
    and ``run_dir``, it records the MLflow run it logs into (``tracker.run_id``, ``tracker.experiment_id``) in
    engine.json, so the Runs card names the very run to open."""

    def __init__(self, run: ResolvedRun, trainer, facts: dict | None = None, run_dir: Path | None = None):
        self.run = run
        self.trainer = trainer
        self.facts = facts
        self.run_dir = run_dir

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        config = self.run.config.model_dump(mode="json")
        config["datasets_resolved"] = [ref.name for ref in self.run.datasets]
        name = self.run.config.report_to
        if name == "tensorboard":
            from transformers.integrations import TensorBoardCallback

            for callback in self.trainer.callback_handler.callbacks:
                if isinstance(callback, TensorBoardCallback) and callback.tb_writer is not None:
                    callback.tb_writer.add_text("tunesmith/run_config", json.dumps(config, indent=1))
                    callback.tb_writer.flush()
        elif name == "mlflow":
            import mlflow

            mlflow.log_dict(config, "tunesmith_run_config.json")
            mlflow.log_params({f"tunesmith.{key}": str(value)[:500] for key, value in config.items()})
            self._record_mlflow_run(mlflow.active_run())
        elif name == "wandb":
            import wandb

            if wandb.run is not None:
                wandb.run.config.update({"tunesmith": config}, allow_val_change=True)


    def _record_mlflow_run(self, active) -> None:
        if active is None or self.facts is None or self.run_dir is None or "tracker" not in self.facts:
            return
        from backend.engine.outputs import write_engine_facts

        self.facts["tracker"].update(run_id=active.info.run_id, experiment_id=active.info.experiment_id)
        write_engine_facts(self.run_dir, self.facts)


class EvaluateAtLastStep(TrainerCallback):
    """Evaluate at the step training ends (max_steps, or a stop request), inside train(), so the final eval loss
    reaches the trackers before they close."""

    def on_step_end(self, args, state, control, **kwargs):
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "no":
            return control
        if state.global_step >= state.max_steps or control.should_training_stop:
            control.should_evaluate = True
        return control
