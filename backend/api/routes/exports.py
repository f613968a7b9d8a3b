from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from backend.api.deps import JobsDep
from backend.api.errors import error_responses
from backend.api.schemas import MergePublic
from backend.engine_process import EngineTimedOut
from backend.errors import EngineFailed
from backend.jobs.service import JobNotFound, JobStateConflict
from backend.zipstream import iter_zip

router = APIRouter(prefix="/jobs", tags=["exports"])


OUTPUT_ERRORS = error_responses(JobNotFound, JobStateConflict)


def _zip_response(path: Path, name: str) -> StreamingResponse:
    return StreamingResponse(iter_zip(path, name), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})


@router.get("/{job_id}/adapter", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}, **OUTPUT_ERRORS})
def download_adapter(job_id: str, jobs: JobsDep):
    """The LoRA adapter as a zip: adapter_config.json, adapter_model.safetensors and the tokenizer files."""
    return _zip_response(jobs.output_dir(job_id, "adapter"), f"{job_id}-adapter")


@router.post("/{job_id}/merge", response_model=MergePublic,
             responses=error_responses(JobNotFound, JobStateConflict, EngineFailed, EngineTimedOut))
def merge_job(job_id: str, jobs: JobsDep) -> MergePublic:
    """Merge the adapter into the base model (safetensors shards + config + tokenizer). Idempotent. A failing
    merge is a 422 with the engine's own error line and hint."""
    path = jobs.merge(job_id)
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    return MergePublic(path=str(path), files=files)


@router.get("/{job_id}/merged", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}, **OUTPUT_ERRORS})
def download_merged(job_id: str, jobs: JobsDep):
    """The merged model (or, for full/freeze runs, the trained model) streamed as a zip."""
    return _zip_response(jobs.output_dir(job_id, "merged"), f"{job_id}-merged")
