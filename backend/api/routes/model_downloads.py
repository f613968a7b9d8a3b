"""Model downloads from the Hugging Face Hub (or ``HF_ENDPOINT``) into the models root: plan, start, follow,
cancel. The work is done by :class:`backend.model_download.ModelDownloads`."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, Field, SecretStr

from backend.api.errors import error_responses
from backend.errors import (
    Conflict,
    Forbidden,
    InsufficientStorage,
    Invalid,
    NotFound,
    Unavailable,
)
from backend.model_download import DownloadJob, DownloadPlan, ModelDownloads, Source, download_sources

router = APIRouter(prefix="/models/download", tags=["models"])
_create_lock = threading.Lock()


def get_downloads(request: Request) -> ModelDownloads:
    """The app's download service, made on first use (it holds only in-memory job records and threads)."""
    state = request.app.state
    with _create_lock:
        if getattr(state, "model_downloads", None) is None:
            state.model_downloads = ModelDownloads(state.settings)
    return state.model_downloads


DownloadsDep = Annotated[ModelDownloads, Depends(get_downloads)]


class DownloadCreate(BaseModel):
    repo_id: str = Field(..., min_length=3, max_length=200, description="Hub model id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct.")
    revision: str | None = Field(None, max_length=200, description="Branch, tag or commit (default main).")
    source: Source = Field("huggingface", description="huggingface (HF_ENDPOINT picks a mirror); modelscope needs "
                           "its client installed.")
    token: SecretStr | None = Field(None, max_length=500, description="A hub token for a gated or private model "
                                    "(else the server's HF_TOKEN). Used for this download only: kept in memory "
                                    "while it runs, never written to disk, never sent back.")

    def token_value(self) -> str | None:
        return (self.token.get_secret_value().strip() or None) if self.token else None


class FilePublic(BaseModel):
    path: str
    size: int


class PlanPublic(BaseModel):
    repo_id: str
    revision: str
    commit: str = Field(description="The commit the revision resolves to; the download fetches exactly it.")
    model_id: str = Field(description="The id the model will have in GET /api/v1/models (org--name).")
    files: list[FilePublic] = Field(description="What will be fetched: configs, tokenizer, weights.")
    total_bytes: int
    present_bytes: int = Field(description="Already downloaded by an earlier, unfinished attempt (resumed).")
    needed_bytes: int
    free_bytes: int = Field(description="Free space on the models disk now.")
    reserve_bytes: int = Field(description="Space kept free (TUNESMITH_DOWNLOAD_RESERVE_BYTES).")
    fits: bool
    installed: bool = Field(False, description="The model is in the models root already: starting the download "
                            "is refused (409) until that folder is deleted or renamed.")


class DownloadPublic(BaseModel):
    id: str
    repo_id: str
    revision: str
    commit: str
    model_id: str
    state: str = Field(description="running | succeeded | failed | cancelled | interrupted (the studio restarted)")
    bytes_done: int
    bytes_total: int
    progress: float = Field(description="0..1")
    files_total: int
    current_file: str | None = Field(description="The file being fetched now.")
    bytes_per_s: float | None = Field(description="Download speed of this attempt (None until it is measurable).")
    eta_s: float | None = Field(description="Seconds left at that speed.")
    error: str | None
    hint: str | None
    started_at: str
    finished_at: str | None


class SourcePublic(BaseModel):
    name: Source
    available: bool = Field(description="Whether a download from it can start now.")
    endpoint: str | None = Field(description="Where the files come from (the hub, or the mirror HF_ENDPOINT names).")
    reason: str | None = Field(description="Why it is not available.")


class SourcesPublic(BaseModel):
    data: list[SourcePublic]
    count: int


class DownloadsPublic(BaseModel):
    data: list[DownloadPublic]
    count: int


def _plan_public(plan: DownloadPlan, downloads: ModelDownloads) -> PlanPublic:
    return PlanPublic(installed=(downloads.settings.models_dir / plan.model_id).exists(), repo_id=plan.repo_id, revision=plan.revision, commit=plan.commit, model_id=plan.model_id,
                      files=[FilePublic(path=f.path, size=f.size) for f in plan.files], total_bytes=plan.total_bytes,
                      present_bytes=plan.present_bytes, needed_bytes=plan.needed_bytes, free_bytes=plan.free_bytes,
                      reserve_bytes=plan.reserve_bytes, fits=plan.fits)


def _public(downloads: ModelDownloads, job: DownloadJob) -> DownloadPublic:
    plan = job.plan
    done = downloads.bytes_done(job)
    rate = job.rate(done)
    return DownloadPublic(id=job.id, repo_id=plan.repo_id, revision=plan.revision, commit=plan.commit,
                          model_id=plan.model_id, state=job.state, bytes_done=done, bytes_total=plan.total_bytes,
                          progress=round(done / plan.total_bytes, 4) if plan.total_bytes else 1.0,
                          files_total=len(plan.files), current_file=job.current_file,
                          bytes_per_s=round(rate, 1) if rate else None,
                          eta_s=round((plan.total_bytes - done) / rate, 1) if rate else None,
                          error=job.error, hint=job.hint, started_at=job.started_at, finished_at=job.finished_at)


HUB_ERRORS = (Invalid, NotFound, Forbidden, Unavailable)


@router.get("/plan", response_model=PlanPublic, responses=error_responses(*HUB_ERRORS))
def plan_download(downloads: DownloadsDep,
                  repo_id: str = Query(..., min_length=3, max_length=200, description="Hub model id (org/name)."),
                  revision: str | None = Query(None, max_length=200), source: Source = "huggingface") -> PlanPublic:
    """What downloading ``repo_id`` would fetch and its size, and whether it fits on the models disk; starts
    nothing. 404 unknown model or revision, 403 gated without access, 503 offline or hub unreachable."""
    return _plan_public(downloads.plan(repo_id, revision, source), downloads)


@router.get("/sources", response_model=SourcesPublic)
def list_sources(downloads: DownloadsDep) -> SourcesPublic:
    """The hubs this studio downloads from, whether each works now and from where (contacts no hub)."""
    data = [SourcePublic(**vars(source)) for source in download_sources(downloads.hub)]
    return SourcesPublic(data=data, count=len(data))


@router.post("/plan", response_model=PlanPublic, responses=error_responses(*HUB_ERRORS))
def plan_download_with_token(body: DownloadCreate, downloads: DownloadsDep) -> PlanPublic:
    """The same plan as GET /models/download/plan, for a request that carries a token (kept out of URLs, which
    end up in logs); starts nothing."""
    return _plan_public(downloads.plan(body.repo_id, body.revision, body.source, body.token_value()), downloads)


@router.post("", response_model=DownloadPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=error_responses(*HUB_ERRORS, Conflict, InsufficientStorage))
def start_download(body: DownloadCreate, downloads: DownloadsDep) -> DownloadPublic:
    """Start downloading a model into the models root; follow it with GET /models/download/{id}. Starting the
    same model again after a failure or cancel resumes it. 409 when it is already there or downloading, 507 when
    the disk is too small, 503 offline."""
    return _public(downloads, downloads.start(body.repo_id, body.revision, body.source, body.token_value()))


@router.get("", response_model=DownloadsPublic)
def list_downloads(downloads: DownloadsDep) -> DownloadsPublic:
    """The downloads since the studio started, and unfinished ones from before a restart (state interrupted:
    POST the same repo_id to resume), newest first."""
    data = [_public(downloads, job) for job in downloads.list_jobs()]
    return DownloadsPublic(data=data, count=len(data))


@router.get("/{job_id}", response_model=DownloadPublic, responses=error_responses(NotFound))
def get_download(job_id: str, downloads: DownloadsDep) -> DownloadPublic:
    """A download's state and bytes done / total."""
    return _public(downloads, downloads.get(job_id))


@router.post("/{job_id}/cancel", response_model=DownloadPublic, responses=error_responses(NotFound, Conflict))
def cancel_download(job_id: str, downloads: DownloadsDep) -> DownloadPublic:
    """Stop a running download; what it fetched is kept for a later resume. 409 when it is not running."""
    return _public(downloads, downloads.cancel(job_id))
