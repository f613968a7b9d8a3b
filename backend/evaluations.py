"""Evaluations: run ``python -m backend.engine evaluate`` for a succeeded job or a base model, keep the results.

A job's evaluations live in ``runs/<id>/evaluations/<eval_id>/``, a base model's in ``<home>/evaluations/<eval_id>/``;
each holds ``metrics.json`` (the engine's metrics plus ``id``, ``created_at``, ``job_id`` or ``base_model``,
``dataset_id``, ``max_samples``), ``predictions.jsonl`` and ``evaluate.log``. The engine writes into
``.tmp-<eval_id>``, which is renamed into place only when it succeeded: a failed evaluation leaves only its log,
``failed-<eval_id>.log``. One evaluation at a time per job or base model; the call waits for the subprocess
(like merge). No torch here.
"""

from __future__ import annotations

import builtins  # list[...] annotations inside a class that has a method named list
import json
import secrets
import shutil
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from backend import catalog
from backend.config import rundir
from backend.datasets.formats import dataset_kind
from backend.datasets.registry import DatasetRegistry
from backend.engine_process import EngineTimedOut, build_engine_command, run_engine
from backend.errors import Busy, EngineFailed, Invalid, NotFound
from backend.fsio import atomic_write_json
from backend.jobs.service import JobService, JobStateConflict
from backend.settings import Settings

EVALUATIONS_DIR = rundir.EVALUATIONS_DIR
METRICS_FILE = "metrics.json"  # names written by backend.engine.evaluate (not imported: it needs torch)
PREDICTIONS_FILE = "predictions.jsonl"
PROGRESS_FILE = "progress.json"  # backend.engine.eval_progress, while the engine runs
LOG_FILE = "evaluate.log"
DEFAULT_TIMEOUT_S = 3600.0
DATASET_LOC = ("body", "dataset")


class EvaluationNotFound(NotFound):
    """No such base model, or no such evaluation."""


class EvaluationBusy(Busy):
    """An evaluation of the same job or base model is already running."""


@dataclass(frozen=True)
class EvalTarget:
    """What to evaluate: ``engine_args`` select the weights; results go under ``root``."""

    key: str                 # "job:<id>" or "model:<id>", the unit of "one at a time"
    label: str
    root: Path               # the folder holding this target's evaluation folders
    engine_args: tuple[str, ...]
    record: tuple[tuple[str, str], ...]  # ("job_id", id) or ("base_model", id), added to metrics.json
    stage: str | None = None  # a run's stage (rm runs are scored on pairs); None for a base model
    has_held_out: bool = False  # a run that held rows out of training (val_size or validation datasets)


def new_eval_id() -> str:
    return "ev_" + secrets.token_hex(5)


@dataclass(frozen=True)
class EvalRows:
    """What to score: a registered dataset's first rows (``path`` and ``name``), or the run's held-out split."""

    split: str  # "dataset" | "held_out"
    name: str
    path: Path | None = None
    dataset_id: str | None = None


def build_evaluate_command(target: EvalTarget, rows: EvalRows, out_dir: Path, max_samples: int,
                           max_new_tokens: int, cutoff_len: int | None, with_base: bool = False,
                           python: str = sys.executable) -> list[str]:
    args = [*target.engine_args, "--split", rows.split, "--dataset-name", rows.name, "--out", str(out_dir),
            "--max-samples", str(int(max_samples)), "--max-new-tokens", str(int(max_new_tokens))]
    args += ["--dataset-path", str(rows.path)] if rows.path is not None else []
    args += ["--cutoff-len", str(int(cutoff_len))] if cutoff_len else []
    args += ["--with-base"] if with_base else []
    return build_engine_command("evaluate", *args, python=python)


class EvaluationService:
    def __init__(self, settings: Settings, jobs: JobService, registry: DatasetRegistry,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        self.settings = settings
        self.jobs = jobs
        self.registry = registry
        self.timeout_s = timeout_s
        self._locks: dict[str, threading.Lock] = {}
        self._running: dict[str, Path] = {}  # target key -> the work folder of its evaluation in progress
        self._locks_guard = threading.Lock()

    @property
    def base_root(self) -> Path:
        """Where base-model evaluations live."""
        return self.settings.home / EVALUATIONS_DIR

    # -- targets ------------------------------------------------------------------------------------
    def job_target(self, job_id: str, *, for_running: bool = True) -> EvalTarget:
        """A job's target (JobNotFound for an unknown id). ``for_running``: the job must have succeeded and
        still have its adapter or trained model on disk (JobStateConflict otherwise)."""
        job = self.jobs.get(job_id)
        if for_running:
            if job.state != "succeeded":
                raise JobStateConflict(f"job {job_id} is {job.state}; only a succeeded job can be evaluated")
            if job.run.weights().trained is None:
                folder = job.run.model_dir if job.output == "model" else job.run.adapter_dir
                raise JobStateConflict(f"job {job_id} has no trained output on disk ({folder}); "
                                       "was its run directory moved or cleaned?")
        stage, held_out = None, False
        if for_running and job.run.has_run():
            resolved = job.run.read_run()
            stage = resolved.config.stage
            held_out = resolved.config.val_size > 0 or bool(resolved.val_datasets)
        return EvalTarget(key=f"job:{job_id}", label=job.name or job_id, root=job.run.evaluations_dir,
                          engine_args=("--run-dir", str(job.run.path)), record=(("job_id", job_id),),
                          stage=stage, has_held_out=held_out)

    def model_target(self, model: str) -> EvalTarget:
        info = catalog.resolve_model(self.settings, model)
        if info is None:
            known = ", ".join(m.id for m in catalog.list_models(self.settings)) or "none"
            raise EvaluationNotFound(f"unknown model {model!r}; available: {known} "
                                     "(or an absolute path to an HF-format model directory)")
        return EvalTarget(key=f"model:{info.id}", label=info.id, root=self.base_root,
                          engine_args=("--model-dir", info.path), record=(("base_model", info.id),))

    # -- running ------------------------------------------------------------------------------------
    def eval_rows(self, target: EvalTarget, dataset: str | None) -> EvalRows:
        """A registered dataset (id or name; DatasetNotFound if unknown) or, ``dataset`` None, the run's held-out
        split; 422 (loc ``dataset``) when there is none, or when a reward model is given no preference pairs."""
        if dataset is None:
            if "job_id" not in dict(target.record):
                raise Invalid("a base model has no held-out split; name a dataset", loc=DATASET_LOC)
            if not target.has_held_out:
                raise Invalid(f"run {target.label} held no rows out of training (val_size 0, no validation "
                              "datasets); name a dataset to evaluate on", loc=DATASET_LOC,
                              hint="train with val_size > 0 to get a held-out split")
            return EvalRows(split="held_out", name="held-out split")
        record = self.registry.require(dataset)
        if not record.path.is_file():
            raise EngineFailed(f"dataset {record.name!r} is registered but its file is missing ({record.path})",
                               hint="delete the dataset and upload it again")
        if target.stage == "rm" and dataset_kind(record.format) != "preference":
            raise Invalid(f"run {target.label} is a reward model (stage 'rm'): it is evaluated on chosen/rejected "
                          f"pairs, and dataset {record.name!r} is {record.format} data", loc=DATASET_LOC,
                          hint="pick a preference dataset (e.g. the built-in preference_demo)")
        return EvalRows(split="dataset", name=record.name, path=record.path, dataset_id=record.id)

    def run(self, target: EvalTarget, dataset: str | None, *, max_samples: int = 50, max_new_tokens: int = 128,
            cutoff_len: int | None = None, with_base: bool = False) -> dict:
        """Evaluate ``target`` on a registered dataset or its held-out split (:meth:`eval_rows`) and return its
        metrics. Raises EvaluationBusy when the target is being evaluated, EngineFailed (EngineTimedOut) on failure."""
        rows = self.eval_rows(target, dataset)
        lock = self._lock_for(target.key)
        if not lock.acquire(blocking=False):
            raise EvaluationBusy(f"{target.label} is being evaluated right now; wait for that evaluation to "
                                 "finish, then try again")
        try:
            eval_id = new_eval_id()
            target.root.mkdir(parents=True, exist_ok=True)
            work, final = target.root / f".tmp-{eval_id}", target.root / eval_id
            work.mkdir()
            self._running[target.key] = work
            try:
                self._run_engine(build_evaluate_command(target, rows, work, max_samples, max_new_tokens, cutoff_len,
                                                        with_base), work)
                metrics = json.loads((work / METRICS_FILE).read_text(encoding="utf-8"))
                created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                metrics.update({"id": eval_id, "created_at": created, **dict(target.record),
                                "dataset_id": rows.dataset_id, "dataset": rows.name, "max_samples": max_samples})
                atomic_write_json(work / METRICS_FILE, metrics)
                work.rename(final)
            except BaseException:
                log = work / LOG_FILE
                if log.is_file():
                    shutil.copyfile(log, target.root / f"failed-{eval_id}.log")
                shutil.rmtree(work, ignore_errors=True)
                raise
            finally:
                self._running.pop(target.key, None)
            return metrics
        finally:
            lock.release()

    def progress(self, target: EvalTarget) -> dict:
        """How far the target's running evaluation is: ``{"running": false}``, or ``running`` with the engine's
        ``phase`` ("run:loss", "run:predictions", "base:loss", ... "run:pairs"), ``done``/``total`` rows and
        ``fraction`` of the whole (null until the engine has loaded the model and begun)."""
        work = self._running.get(target.key)
        if work is None:
            return {"running": False}
        try:
            state = json.loads((work / PROGRESS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        keys = ("phase", "phase_index", "phases", "done", "total", "fraction")
        return {"running": True, "eval_id": work.name.removeprefix(".tmp-"),
                **{key: state.get(key) for key in keys}}

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _run_engine(self, argv: list[str], work: Path) -> None:
        try:
            run_engine(argv, what="evaluation", timeout_s=self.timeout_s, log_path=work / LOG_FILE,
                       timeout_hint="evaluate fewer samples or fewer new tokens")
        except EngineTimedOut:
            raise
        except EngineFailed as exc:
            raise EngineFailed(f"evaluation failed: {exc.message}", hint=exc.hint) from None
        if not (work / METRICS_FILE).is_file():
            raise EngineFailed(f"the evaluate process ended without writing {METRICS_FILE}",
                               hint=f"see {LOG_FILE} of the failed evaluation")

    # -- results ------------------------------------------------------------------------------------
    def list(self, target: EvalTarget) -> builtins.list[dict]:
        """The target's evaluations (metrics.json of each), newest first; a base model's only its own."""
        results = []
        if target.root.is_dir():
            for child in target.root.iterdir():
                metrics = _read_metrics(child)
                if metrics is not None and all(metrics.get(k) == v for k, v in target.record):
                    results.append(metrics)
        results.sort(key=lambda m: str(m.get("created_at", "")), reverse=True)
        return results

    def list_base_models(self) -> builtins.list[dict]:
        """Every base-model evaluation, newest first."""
        root = self.base_root
        results = [m for child in (root.iterdir() if root.is_dir() else []) if (m := _read_metrics(child))]
        return sorted(results, key=lambda m: str(m.get("created_at", "")), reverse=True)

    def predictions_path(self, root: Path, eval_id: str) -> Path:
        path = root / eval_id / PREDICTIONS_FILE
        if eval_id.startswith(".") or "/" in eval_id or not path.is_file():
            raise EvaluationNotFound(f"no evaluation with id {eval_id!r} here; list them first")
        return path


def _read_metrics(folder: Path) -> dict | None:
    if folder.name.startswith(".") or not folder.is_dir():
        return None
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("id") == folder.name else None
