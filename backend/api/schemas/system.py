"""System: who holds which GPU and why queued jobs wait."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GpuSlotPublic(BaseModel):
    index: int
    job_id: str | None = Field(description="The running job holding this GPU; null when it is free.")


class QueuedJobPublic(BaseModel):
    job_id: str
    needs: list[int] = Field(description="The GPUs it will run on; [] = a CPU job.")
    waiting_for: str = Field(description='Why it has not started, e.g. "waiting for GPU 1 (job_x)".')


class GpuSlotsPublic(BaseModel):
    gpus: list[GpuSlotPublic]
    cpu_jobs: list[str] = Field(description="Running jobs that use no GPU (each takes one CPU slot).")
    max_cpu_jobs: int = Field(description="CPU jobs that may run at once (TUNESMITH_MAX_CPU_JOBS).")
    queued: list[QueuedJobPublic] = Field(description="Queued jobs that could not start, oldest first "
                                          "(as of the runner's last scheduling step, at most a second old).")
