from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import JobsDep
from backend.api.schemas import GpuSlotPublic, GpuSlotsPublic, QueuedJobPublic
from backend.jobs.gpus import query_gpus
from backend.version import studio_version

router = APIRouter(tags=["system"])


@router.get("/health")
def health() -> dict:
    gpus = query_gpus()
    return {
        "status": "ok",
        "version": studio_version(),
        "device": "cuda" if gpus else "cpu",
        "gpus": [{"index": g.index, "name": g.name, "memory_total_mib": g.memory_total_mib,
                  "memory_used_mib": g.memory_used_mib,
                  "compute_capability": ".".join(map(str, g.compute_capability)) if g.compute_capability else None}
                 for g in gpus],
    }


@router.get("/gpus", response_model=GpuSlotsPublic)
def gpu_slots(jobs: JobsDep) -> GpuSlotsPublic:
    """Which running job holds which GPU, and why each waiting job waits. One job per GPU; a job without
    `distributed.gpus` needs every GPU; a younger job starts first only on GPUs no older waiting job needs."""
    runner = jobs.runner
    holders = runner.gpu_holders()
    return GpuSlotsPublic(
        gpus=[GpuSlotPublic(index=i, job_id=holders.get(i)) for i in sorted({*runner.visible_gpus(), *holders})],
        cpu_jobs=runner.cpu_job_ids(), max_cpu_jobs=runner.max_cpu_jobs,
        queued=[QueuedJobPublic(job_id=q.job_id, needs=q.needs, waiting_for=q.waiting_for)
                for q in runner.queued_views()],
    )
