"""A run's lineage, dataset -> run -> export: the datasets it trained and was evaluated on (as resolved when it was
submitted, with the content hash of the registered data), the run it continued from, the runs continued from it,
and its exports. Read for ``GET /api/v1/jobs/{id}/lineage``; pure over the rows and records it is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from backend.config.schema import DatasetRef, ResolvedRun
from backend.jobs.store import JobRow


def _run_ref(job: JobRow | None, job_id: str) -> dict[str, Any]:
    if job is None:  # deleted since (a parent can be deleted once no running job continues from it)
        return {"id": job_id, "name": None, "state": None, "exists": False}
    return {"id": job.id, "name": job.name, "state": job.state, "exists": True}


def _dataset_ref(ref: DatasetRef, role: str, lookup: Callable[[str], Any]) -> dict[str, Any]:
    """A dataset the run used; ``sha256`` from the registry while the dataset is registered (a registered
    dataset's data never changes: a new upload is a new dataset), None once it was deleted."""
    record = lookup(ref.id)
    return {"id": ref.id, "name": ref.name, "role": role, "format": ref.format, "num_rows": ref.num_rows,
            "weight": ref.weight, "max_samples": ref.max_samples,
            "sha256": getattr(record, "sha256", None) if record is not None else None,
            "registered": record is not None}


def lineage(job: JobRow, run: ResolvedRun | None, jobs: Sequence[JobRow], lookup: Callable[[str], Any],
            exports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The lineage of ``job`` (``run``: its run.yaml, None when its run directory is gone); ``jobs``: every job
    (for the parent and the children); ``lookup``: dataset id -> registry record or None; ``exports``: the
    exports service's list for the run."""
    by_id = {j.id: j for j in jobs}
    parent_id = job.config.get("init_from_run")
    datasets = [] if run is None else (
        [_dataset_ref(ref, "train", lookup) for ref in run.datasets]
        + [_dataset_ref(ref, "validation", lookup) for ref in run.val_datasets])
    children = [_run_ref(j, j.id) for j in sorted(jobs, key=lambda j: j.created_at)
                if j.config.get("init_from_run") == job.id]
    return {
        "job_id": job.id,
        "base_model": run.config.base_model if run is not None else job.config.get("base_model"),
        "datasets": datasets,
        "parent": _run_ref(by_id.get(str(parent_id)), str(parent_id)) if parent_id else None,
        "children": children,
        "exports": [{"id": e.get("id"), "state": e.get("state"), "format": e.get("format"),
                     "quantization": e.get("quantization"), "dtype": e.get("dtype"), "bytes": e.get("bytes")}
                    for e in exports],
    }
