"""Jobs: JobCreate (a run config + name), JobPublic/JobsPublic (the row plus what its run dir says), metrics,
logs, merge result and the launch preview."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.config.rundir import RunFacts
from backend.config.schema import RunConfig
from backend.jobs.store import JobRow


class JobCreate(RunConfig):
    """A run config plus an optional display name."""

    name: str | None = Field(None, max_length=120, description="Display name of the job.")


class JobPublic(BaseModel):
    id: str
    name: str
    state: str
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: float = Field(description="0..1, from the latest logged step")
    step: int
    total_steps: int | None
    latest_loss: float | None
    error: str | None
    hint: str | None
    output: str | None = Field(description='"adapter" (LoRA/QLoRA) or "model" (full/freeze) once succeeded')
    has_merged: bool
    gpus: list[int]
    waiting_for: str | None = Field(None, description='A queued job: why it has not started yet, e.g. "waiting for '
                                    'GPU 1 (job_x)" or "waiting for a CPU slot (1 of 1 in use: job_y)".')
    stop_requested: bool = Field(False, description="POST /jobs/{id}/stop was sent and the run has not ended yet.")
    stopped_early_at_step: int | None = Field(None, description="The run was stopped and saved at this step.")
    engine: dict[str, Any] | None = Field(
        None, description="What the engine resolved once training started (engine.json): precision, "
        "attn_implementation actually active, gradient_checkpointing, liger_kernel, batch_tokens, memory_plan.")
    run_dir: str
    stalled: dict[str, Any] | None = Field(
        None, description="A running job that has logged no training step for k x its median step time (stall "
        "watchdog): since, idle_s, median_step_s, threshold_s, last_step, log_tail and stack_dump (a Python stack "
        "dump of the training process); cancel it and resume it from its last checkpoint, or wait.")
    parent_run: str | None = Field(None, description="Lineage: the run this one continued from (config.init_from_run); "
                                   "it started from that run's adapter or trained model.")
    tags: list[str] = Field(default_factory=list, description="The user's labels (PATCH /jobs/{id}); filter with "
                            "GET /jobs?tag=.")
    notes: str = Field("", description="The user's notes on the run (PATCH /jobs/{id}).")

    @classmethod
    def of(cls, job: JobRow, run: RunFacts, waiting_for: str | None = None) -> JobPublic:
        """The job's row plus what its run directory says (``RunDir(job.run_dir).facts()``)."""
        event = run.last_event or {}
        step = int(event.get("step") or 0)
        total = event.get("total_steps")
        progress = 1.0 if job.state == "succeeded" else (min(step / total, 1.0) if total else 0.0)
        return cls(
            id=job.id, name=job.name, state=job.state, config=job.config, created_at=job.created_at,
            started_at=job.started_at, finished_at=job.finished_at, progress=round(progress, 4), step=step,
            total_steps=total, latest_loss=event.get("loss"), error=job.error, hint=job.hint, output=job.output,
            has_merged=run.has_merged or job.output == "model", gpus=job.gpus, engine=run.engine,
            run_dir=job.run_dir, tags=job.tags, notes=job.notes, waiting_for=waiting_for if job.state == "queued" else None,
            stop_requested=job.state == "running" and run.stop_requested,
            stopped_early_at_step=run.stopped_early_at_step if job.state == "succeeded" else None,
            parent_run=job.config.get("init_from_run"), stalled=run.stall if job.state == "running" else None,
        )


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class MetricsPublic(BaseModel):
    data: list[dict[str, Any]]
    count: int


class LogsPublic(BaseModel):
    text: str


class MergePublic(BaseModel):
    path: str
    files: list[str]


class LaunchPreview(BaseModel):
    argv: list[str] = Field(description="The command the runner would start (never through a shell).")
    files: dict[str, str] = Field(description="Launch files it would write into the run dir, name -> text: "
                                  "accelerate.yaml (DeepSpeed/FSDP) and deepspeed.json (DeepSpeed); empty otherwise.")
