from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from backend.api.deps import JobsDep
from backend.api.errors import error_responses
from backend.api.schemas import (
    JobCreate,
    JobPublic,
    JobsPublic,
    LaunchPreview,
    LogsPublic,
    MetricsPublic,
)
from backend.api.schemas.lineage import LineagePublic
from backend.config.rundir import RunDir
from backend.config.schema import RunConfig
from backend.jobs.housekeeping import JobInfoPatch, RunDirOutside
from backend.jobs.launch import select_gpus
from backend.jobs.runner import launch_plan
from backend.jobs.service import JobNotFound, JobStateConflict

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_to_public(job, waiting_for: str | None = None) -> JobPublic:
    return JobPublic.of(job, RunDir(job.run_dir).facts(), waiting_for)


NOT_FOUND = error_responses(JobNotFound)
TRANSITION_ERRORS = error_responses(JobNotFound, JobStateConflict)


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED, responses=error_responses())
def create_job(body: JobCreate, jobs: JobsDep) -> JobPublic:
    """Queue a fine-tuning run. Only `base_model` and `datasets` are required; every other field has a default."""
    config = RunConfig.model_validate(body.model_dump(exclude={"name"}))
    return job_to_public(jobs.submit(config, name=body.name))


@router.post("/preview", response_model=LaunchPreview, responses=error_responses())
def preview_job(body: JobCreate, jobs: JobsDep) -> LaunchPreview:
    """The launch command and files a job with this config would get here; creates nothing (no run dir, no row).
    The run dir shows as ``<job_id>``; a multi-process job gets a free rendezvous port when it starts."""
    config = RunConfig.model_validate(body.model_dump(exclude={"name"}))
    resolved = jobs.resolve(config, "preview")
    gpus = select_gpus(resolved.config.distributed, jobs.runner.gpu_probe())
    argv, files = launch_plan(resolved.config, jobs.settings.runs_dir / "<job_id>", gpus)
    return LaunchPreview(argv=argv, files=files)


def _waiting(jobs) -> dict[str, str]:
    """Why each queued job has not started (as of the runner's last scheduling step)."""
    return {view.job_id: view.waiting_for for view in jobs.runner.queued_views()}


@router.get("", response_model=JobsPublic)
def list_jobs(jobs: JobsDep,
              tag: str | None = Query(None, max_length=40, description="only runs carrying this tag (any case)"),
              q: str | None = Query(None, max_length=200, description="only runs whose id, name, notes, tags or "
                                    "base model contain this text (any case)")) -> JobsPublic:
    waiting = _waiting(jobs)
    data = [job_to_public(j, waiting.get(j.id)) for j in jobs.list(tag=tag or None, query=q or None)]
    return JobsPublic(data=data, count=len(data))


@router.get("/{job_id}", response_model=JobPublic, responses=NOT_FOUND)
def get_job(job_id: str, jobs: JobsDep) -> JobPublic:
    job = jobs.get(job_id)
    return job_to_public(job, _waiting(jobs).get(job.id))


@router.patch("/{job_id}", response_model=JobPublic, responses=NOT_FOUND)
def update_job(job_id: str, body: JobInfoPatch, jobs: JobsDep) -> JobPublic:
    """Rename a run, replace its tags or edit its notes, in any state; fields left out stay as they are."""
    job = jobs.update_info(job_id, body)
    return job_to_public(job, _waiting(jobs).get(job.id))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(JobNotFound, JobStateConflict, RunDirOutside))
def delete_job(job_id: str, jobs: JobsDep, request: Request) -> Response:
    """Delete a finished run: its row and its run directory (checkpoints, adapter/model, merged model, exports,
    evaluations, logs). 409 while it is queued or running (cancel it first), while a running job continues from
    it, or while one of its exports runs."""
    exporting = [item.get("id") for item in request.app.state.exports.list(job_id) if item.get("state") == "running"]
    if exporting:
        raise JobStateConflict(f"job {job_id} is being exported ({', '.join(map(str, exporting))}); delete it when "
                               "the export is done")
    jobs.delete(job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{job_id}/lineage", response_model=LineagePublic, responses=NOT_FOUND)
def get_lineage(job_id: str, jobs: JobsDep, request: Request) -> LineagePublic:
    """dataset -> run -> export: the datasets the run trained on (as resolved at submit, with the content hash of
    the registered data), the run it continued from, the runs continued from it, and its exports."""
    jobs.get(job_id)
    return LineagePublic.model_validate(jobs.lineage(job_id, request.app.state.exports.list(job_id)))


@router.get("/{job_id}/metrics", response_model=MetricsPublic, responses=NOT_FOUND)
def get_metrics(job_id: str, jobs: JobsDep,
                after: int | None = Query(None, description="only rows with step > after (incremental polling)")):
    rows = jobs.metrics(job_id, after=after)
    return MetricsPublic(data=rows, count=len(rows))


@router.get("/{job_id}/logs", response_model=LogsPublic, responses=NOT_FOUND)
def get_logs(job_id: str, jobs: JobsDep, tail: int = Query(200, ge=1, le=100_000)):
    return LogsPublic(text=jobs.logs(job_id, tail=tail))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=TRANSITION_ERRORS)
def cancel_job(job_id: str, jobs: JobsDep) -> JobPublic:
    """Cancel a queued or running job (409 once it has finished)."""
    return job_to_public(jobs.cancel(job_id))


@router.post("/{job_id}/stop", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=TRANSITION_ERRORS)
def stop_job(job_id: str, jobs: JobsDep) -> JobPublic:
    """Stop & save: the running job ends training after its current step and saves its adapter/model as a
    normal, succeeded run (result notes the step). 409 for a job that is not running."""
    return job_to_public(jobs.stop_early(job_id))


@router.post("/{job_id}/resume", response_model=JobPublic, responses=TRANSITION_ERRORS)
def resume_job(job_id: str, jobs: JobsDep) -> JobPublic:
    """Re-queue a failed or cancelled job; it continues from its newest checkpoint (see `save_steps`)."""
    return job_to_public(jobs.resume(job_id))
