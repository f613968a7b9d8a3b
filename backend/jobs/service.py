"""Job service: submit (validate + resolve + create the run dir), cancel, query, merge.

Routes call this; it calls the store, the runner and the dataset registry. No torch here.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from pathlib import Path
from typing import Literal

from backend import catalog
from backend.config import rundir
from backend.config.rundir import RunDir
from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.config.trackers import MLFLOW_DIR
from backend.engine_process import build_engine_command, run_engine
from backend.errors import Conflict, NotFound
from backend.fsio import iter_jsonl
from backend.jobs import housekeeping, lineage_report
from backend.jobs.checks import JobConfigError, check_hardware
from backend.jobs.gpus import query_gpus
from backend.jobs.lineage import parent_weights
from backend.jobs.python_rewards import check_python_rewards, copy_python_rewards
from backend.jobs.reward_runs import check_reward_model_runs
from backend.jobs.runner import JobRunner
from backend.jobs.store import ACTIVE_STATES, FINAL_STATES, JobRow, JobStore, utc_now
from backend.settings import Settings


class JobNotFound(NotFound):
    """No job has this id."""

    def __init__(self, job_id: str):
        super().__init__(f"no job with id {job_id!r}", loc=("path", "job_id"),
                         hint="list the jobs with GET /api/v1/jobs")


class JobStateConflict(Conflict):
    """The job exists but its state forbids this now (not finished, already finished, no outputs yet...)."""


def new_job_id() -> str:
    return "job_" + secrets.token_hex(5)


def _unknown_dataset(loc: tuple, ref: str) -> JobConfigError:
    return JobConfigError(loc, f"unknown dataset {ref!r}; upload it first (POST /api/v1/datasets) or use an id from "
                          "GET /api/v1/datasets")


# what the preference stages can train on (dataset kinds, backend.datasets.formats.dataset_kind) and what to say
STAGE_KINDS = {
    "dpo": ({"preference"}, ("stage 'dpo' needs chosen/rejected pairs; upload a preference dataset (e.g. the built-in "
                             "preference_demo) or use stage 'sft'")),
    "kto": ({"kto", "preference"}, ("stage 'kto' needs replies labelled desirable or not (a KTO dataset) or "
                                    "chosen/rejected pairs (a preference dataset, e.g. the built-in preference_demo); "
                                    "upload one or use stage 'sft'")),
    "rm": ({"preference"}, ("stage 'rm' trains a reward model on chosen/rejected pairs; upload a preference dataset "
                            "(e.g. the built-in preference_demo)")),
    "grpo": ({"sft", "preference", "kto"}, ("stage 'grpo' samples replies to the prompts of a chat dataset (the last "
                                            "user turn); pick a chat dataset, or use stage 'pt' for raw text")),
}


def resolve_datasets(registry, config: RunConfig) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """The training and validation datasets as the engine needs them, or a JobConfigError saying what to fix:
    unknown ids, a dataset listed twice or used for both training and validation, raw text with stage sft, a
    dataset of the wrong kind for stage dpo or kto."""
    refs: list[DatasetRef] = []
    for i, choice in enumerate(config.dataset_choices):
        record = registry.get(choice.id)
        if record is None:
            raise _unknown_dataset(("datasets", i), choice.id)
        if record.id in {r.id for r in refs}:
            raise JobConfigError(("datasets", i), f"dataset {record.name!r} ({record.id}) is listed twice; list it once "
                                 "and give it a larger weight to sample it more")
        refs.append(DatasetRef(id=record.id, name=record.name, path=str(record.path), num_rows=record.num_rows,
                               format=record.format, weight=choice.weight,
                               max_samples=choice.max_samples if choice.max_samples is not None else config.max_samples))
    val_refs: list[DatasetRef] = []
    for i, ref in enumerate(config.val_datasets):
        record = registry.get(ref)
        if record is None:
            raise _unknown_dataset(("val_datasets", i), ref)
        if record.id in {r.id for r in refs}:
            raise JobConfigError(("val_datasets", i), f"dataset {record.name!r} ({record.id}) is both a training and a "
                                 "validation dataset, so the eval loss would be measured on trained rows; pick another "
                                 "validation dataset, or use val_size to hold out a share of the training data")
        val_refs.append(DatasetRef(id=record.id, name=record.name, path=str(record.path), num_rows=record.num_rows,
                                   format=record.format, max_samples=config.max_samples))
    for loc, group in (("datasets", refs), ("val_datasets", val_refs)):
        for i, ref in enumerate(group):
            why = kind_refusal(config.stage, ref.format)
            if why is not None:
                raise JobConfigError((loc, i), f"dataset {ref.name!r} ({ref.id}) {why}")
    return refs, val_refs


def kind_refusal(stage: str, fmt: str) -> str | None:
    """Why ``stage`` cannot train on data of format (or kind) ``fmt``: the end of the 422's sentence; None when it
    can. The one rule: the Train form asks it per kind through GET /api/v1/capabilities."""
    from backend.datasets.formats import dataset_kind

    if stage == "sft" and fmt == "text":
        return ("is raw text and stage 'sft' trains on conversations; use stage 'pt' (continued pretraining) for raw "
                "text, or pick a chat dataset")
    if stage in STAGE_KINDS and dataset_kind(fmt) not in STAGE_KINDS[stage][0]:
        return f"is {fmt} data; {STAGE_KINDS[stage][1]}"
    return None


class JobService:
    def __init__(self, settings: Settings, store: JobStore, runner: JobRunner, registry):
        self.settings = settings
        self.store = store
        self.runner = runner
        self.registry = registry
        self._merge_locks: dict[str, threading.Lock] = {}

    # -- submit -------------------------------------------------------------------------------------
    def resolve(self, config: RunConfig, run_id: str) -> ResolvedRun:
        model = catalog.resolve_model(self.settings, config.base_model)
        if model is None:
            known = ", ".join(m.id for m in catalog.list_models(self.settings)) or "none"
            raise JobConfigError(("base_model",), f"unknown base model {config.base_model!r}; available: {known}. "
                                 "Pick one from GET /api/v1/models or give an absolute path to an HF-format model directory.")
        init_from = None
        if config.init_from_run is not None:
            init_from = str(parent_weights(self.store.get(config.init_from_run), config, model.path))
        check_reward_model_runs(config, lambda job_id: self.store.get(job_id))  # the store only when a reward names a run
        check_python_rewards(config, self.settings.home)
        refs, val_refs = resolve_datasets(self.registry, config)
        gpus = self.runner.gpu_probe()  # one nvidia-smi call per submit (a second only for a bf16 GPU check)
        check_hardware(config, gpus, gpu_details=query_gpus)
        config = config.model_copy(update={
            "datasets": [ref.id if isinstance(entry, str) else entry.model_copy(update={"id": ref.id})
                         for entry, ref in zip(config.datasets, refs)],
            "val_datasets": [ref.id for ref in val_refs],
        })
        tracker_uri = (config.mlflow_tracking_uri or (self.settings.home / MLFLOW_DIR).as_uri()
                       if config.report_to == "mlflow" else None)
        return ResolvedRun(run_id=run_id, config=config, model_path=model.path, datasets=refs, val_datasets=val_refs,
                           init_from=init_from, tracker_uri=tracker_uri,
                           created_at=utc_now())

    def submit(self, config: RunConfig, name: str | None = None) -> JobRow:
        job_id = new_job_id()
        resolved = self.resolve(config, job_id)
        final_dir = self.settings.runs_dir / job_id
        tmp_dir = self.settings.runs_dir / f".tmp-{job_id}"
        tmp_dir.mkdir(parents=True)
        try:
            RunDir(tmp_dir).write_run(resolved)
            copy_python_rewards(resolved.config, self.settings.home, tmp_dir)
            tmp_dir.rename(final_dir)
            job = JobRow(id=job_id, name=name or f"{resolved.config.method.name}-{job_id[4:]}", state="queued",
                         config=resolved.config.model_dump(mode="json"), run_dir=str(final_dir),
                         created_at=resolved.created_at)
            self.store.insert(job)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            shutil.rmtree(final_dir, ignore_errors=True)
            raise
        self.runner.tick()
        return self.get(job_id)

    # -- queries ------------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRow:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self, tag: str | None = None, query: str | None = None) -> list[JobRow]:
        """Every job, newest first; with ``tag`` / ``query`` only those that match (:func:`housekeeping.matches`)."""
        return [job for job in self.store.list() if housekeeping.matches(job, tag, query)]

    def lineage(self, job_id: str, exports: list[dict]) -> dict:
        """dataset -> run -> export (:func:`backend.jobs.lineage_report.lineage`); ``exports``: the run's exports."""
        job = self.get(job_id)
        run = job.run.read_run() if job.run.has_run() else None
        lookup = self.registry.get if self.registry is not None else (lambda _id: None)
        return lineage_report.lineage(job, run, self.store.list(), lookup, exports)

    # -- housekeeping -------------------------------------------------------------------------------
    def update_info(self, job_id: str, patch: housekeeping.JobInfoPatch) -> JobRow:
        """Rename a job, replace its tags, edit its notes (any state)."""
        self.get(job_id)
        changes = patch.changes()
        if changes:
            self.store.update(job_id, **changes)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Delete a finished job: its row and its run directory (checkpoints, adapter/model, merged model,
        evaluations, logs). 409 while it is queued or running, or while a queued/running job continues from it."""
        job = self.get(job_id)
        if job.state in ACTIVE_STATES:
            raise JobStateConflict(f"job {job_id} is {job.state}; cancel it first, then delete it")
        children = [j.id for j in self.store.list(states=ACTIVE_STATES) if j.config.get("init_from_run") == job_id]
        if children:
            raise JobStateConflict(f"job {', '.join(children)} continues from job {job_id} and has not finished; "
                                   "wait for it or cancel it first")
        lock = self._merge_locks.setdefault(job_id, threading.Lock())
        if not lock.acquire(blocking=False):
            raise JobStateConflict(f"job {job_id} is being merged; delete it when the merge is done")
        try:
            doomed = housekeeping.move_aside(self.settings.runs_dir, Path(job.run_dir))
            if not self.store.delete(job_id, expect_state=FINAL_STATES):
                if doomed is not None:
                    doomed.rename(job.run_dir)
                raise JobStateConflict(f"job {job_id} was queued again meanwhile; cancel it first, then delete it")
        finally:
            lock.release()
        self._merge_locks.pop(job_id, None)
        if doomed is not None:
            shutil.rmtree(doomed)

    def datasets_in_use(self) -> set[str]:
        """Ids (or names) of the training and validation datasets of every queued or running job."""
        return set().union(*(job.dataset_refs for job in self.store.list(states=ACTIVE_STATES)))

    def metrics(self, job_id: str, after: int | None = None) -> list[dict]:
        job = self.get(job_id)
        rows = iter_jsonl(job.run.file(rundir.EVENTS_FILE))
        return [r for r in rows if after is None or r.get("step", 0) > after]

    def logs(self, job_id: str, tail: int = 200) -> str:
        job = self.get(job_id)
        return job.run.log_tail(lines=tail)

    # -- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobRow:
        job = self.get(job_id)
        if job.state in FINAL_STATES:
            raise JobStateConflict(f"job {job_id} already {job.state}; only queued or running jobs can be cancelled")
        self.store.update(job_id, cancel_requested=True)
        if self.store.update(job_id, expect_state=("queued",), state="cancelled", finished_at=utc_now(),
                             error="cancelled by the user"):
            return self.get(job_id)
        self.runner.cancel_running(job_id)
        return self.get(job_id)

    def stop_early(self, job_id: str) -> JobRow:
        """"Stop & save": ask a running job to end training after its current step and save what it has trained
        (it then ends ``succeeded`` with its adapter/model); a queued job has nothing to save, so cancel it."""
        job = self.get(job_id)
        if job.state != "running":
            what = "has not started; cancel it instead" if job.state == "queued" else f"is already {job.state}"
            raise JobStateConflict(f"job {job_id} {what}; only a running job can be stopped and saved")
        job.run.request_stop(utc_now())
        return self.get(job_id)

    # -- resume -------------------------------------------------------------------------------------
    def resume(self, job_id: str) -> JobRow:
        """Queue a failed or cancelled job again in the same run dir; the engine continues from its newest
        checkpoint (``checkpoints/checkpoint-N``) or, when there is none, starts over."""
        job = self.get(job_id)
        if job.state not in ("failed", "cancelled"):
            raise JobStateConflict(f"job {job_id} is {job.state}; only failed or cancelled jobs can be resumed")
        if not job.run.has_run():
            raise JobStateConflict(f"job {job_id} has lost its run directory ({job.run_dir}); submit it again")
        job.run.clear_stop()  # an old stop request must not end the new attempt
        self.store.update(job_id, expect_state=("failed", "cancelled"), state="queued", cancel_requested=False,
                          error=None, hint=None, finished_at=None, started_at=None, pid=None, output=None)
        self.runner.tick()
        return self.get(job_id)

    # -- outputs ------------------------------------------------------------------------------------
    def output_dir(self, job_id: str, kind: Literal["adapter", "merged"]) -> Path:
        """The adapter, or the whole model (trained full/freeze model, else the merged one), of a succeeded job."""
        job = self._succeeded(job_id, "outputs exist only for succeeded jobs")
        weights = job.run.weights()
        if kind == "adapter":
            if job.output != "adapter":
                raise JobStateConflict(f"job {job_id} trained with method {job.method!r}, which produces a full "
                                       "model, not an adapter; download it from /merged")
            if weights.adapter is None:
                raise JobStateConflict(f"job {job_id} has no adapter output on disk ({job.run.adapter_dir})")
            return weights.adapter
        if job.output == "model":
            if weights.model is None:
                raise JobStateConflict(f"job {job_id} has no merged output on disk ({job.run.model_dir})")
            return weights.model
        if weights.merged is None:
            raise JobStateConflict(f"job {job_id} has no merged model yet; POST /api/v1/jobs/{job_id}/merge first")
        return weights.merged

    def merge(self, job_id: str, timeout_s: float = 1800) -> Path:
        """Merge the adapter into its base model (``merged/``, written atomically by the engine); a full/freeze
        run's trained model is already whole. EngineFailed (the engine's error and hint) when the merge fails."""
        job = self._succeeded(job_id, "only a succeeded job can be merged")
        if job.output == "model":
            return job.run.model_dir
        lock = self._merge_locks.setdefault(job_id, threading.Lock())
        with lock:
            run_engine(build_engine_command("merge", "--run-dir", job.run.path), what="merge", timeout_s=timeout_s,
                       log_path=job.run.file(rundir.MERGE_LOG_FILE),
                       timeout_hint="merge on a machine with more memory or a faster disk")
        return job.run.merged_dir

    def _succeeded(self, job_id: str, why: str) -> JobRow:
        job = self.get(job_id)
        if job.state != "succeeded":
            raise JobStateConflict(f"job {job_id} is {job.state}; {why}")
        return job
