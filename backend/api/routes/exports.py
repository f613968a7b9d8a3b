from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from backend.api.deps import JobsDep
from backend.api.schemas import MergePublic
from backend.errors import EngineFailed
from backend.jobs.service import JobNotFound, JobStateConflict
from backend.zipstream import iter_zip

router = APIRouter(prefix="/jobs", tags=["exports"])


def _output_dir(jobs: JobsDep, job_id: str, kind: str) -> Path:
    try:
        path = jobs.output_dir(job_id, kind)
    except JobNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job with id {job_id!r}") from None
    except JobStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not path.is_dir():
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} has no {kind} output on disk ({path})")
    return path


def _zip_response(path: Path, name: str) -> StreamingResponse:
    return StreamingResponse(iter_zip(path, name), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})


@router.get("/{job_id}/adapter", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def download_adapter(job_id: str, jobs: JobsDep):
    """The LoRA adapter as a zip: adapter_config.json, adapter_model.safetensors and the tokenizer files."""
    return _zip_response(_output_dir(jobs, job_id, "adapter"), f"{job_id}-adapter")


@router.post("/{job_id}/merge", response_model=MergePublic)
def merge_job(job_id: str, jobs: JobsDep) -> MergePublic:
    """Merge the adapter into the base model (safetensors shards + config + tokenizer). Idempotent."""
    try:
        path = jobs.merge(job_id)
    except JobNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job with id {job_id!r}") from None
    except JobStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except EngineFailed as exc:
        raise HTTPException(exc.status, f"merge failed: {exc}") from None
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    return MergePublic(path=str(path), files=files)


@router.get("/{job_id}/merged", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def download_merged(job_id: str, jobs: JobsDep):
    """The merged model (or, for full/freeze runs, the trained model) streamed as a zip."""
    return _zip_response(_output_dir(jobs, job_id, "merged"), f"{job_id}-merged")
