"""Export a finished run as GGUF (with an Ollama Modelfile) or as safetensors with a chosen dtype and shard size.

    POST /api/v1/jobs/{id}/export            {"format": "gguf", "quantization": "q8_0"} -> running, or the finished export
    GET  /api/v1/jobs/{id}/exports           every export of the run (finished, running, failed)
    GET  /api/v1/jobs/{id}/exports/{key}     one export: state, progress, files, download
    GET  /api/v1/jobs/{id}/exports/{key}/download        the whole export as a zip
    GET  /api/v1/jobs/{id}/exports/{key}/files/{name}    one file (e.g. the .gguf itself)
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from backend.exports.formats import ExportSpec
from backend.exports.service import ExportService
from backend.zipstream import iter_zip

router = APIRouter(prefix="/jobs", tags=["exports"])


def get_exports(request: Request) -> ExportService:
    return request.app.state.exports


ExportsDep = Annotated[ExportService, Depends(get_exports)]


class ExportFile(BaseModel):
    name: str
    bytes: int


class ExportProgress(BaseModel):
    stage: str = Field(description="What the export is doing now (merging, converting, quantizing...).")
    fraction: float = Field(ge=0.0, le=1.0)


class ExportPublic(BaseModel):
    id: str = Field(description="The export's key: its options (gguf-q8_0, safetensors-bf16-2GB...).")
    job_id: str
    state: Literal["running", "succeeded", "failed"]
    format: Literal["gguf", "safetensors"] | None = None
    quantization: str | None = None
    dtype: str | None = None
    max_shard_size: str | None = None
    progress: ExportProgress | None = Field(None, description="While running.")
    files: list[ExportFile] = Field(default_factory=list, description="When succeeded: every file with its size.")
    bytes: int | None = Field(None, description="When succeeded: total size.")
    download: str | None = Field(None, description="When succeeded: URL path of the whole export as a zip; "
                                 "/files/{name} under the export serves one file.")
    notes: list[str] = Field(default_factory=list, description="What the export could not include, and why.")
    reused: bool = Field(False, description="An identical export existed already and was returned as is.")
    error: str | None = None
    hint: str | None = None
    started_at: str | None = None
    created_at: str | None = None
    finished_at: str | None = None


class ExportsPublic(BaseModel):
    data: list[ExportPublic]
    count: int


@router.post("/{job_id}/export", response_model=ExportPublic,
             responses={200: {"description": "The export already existed (reused) or finished (wait=true)."},
                        202: {"description": "Started; poll GET /jobs/{id}/exports/{key}."},
                        404: {"description": "No such job."}, 409: {"description": "The run has not succeeded."},
                        422: {"description": "Unknown format/option, or a package the export needs is missing "
                                             "(the hint has the install command), or the engine failed."}})
def start_export(job_id: str, body: ExportSpec, exports: ExportsDep, response: Response,
                 wait: bool = Query(False, description="Block until the export has finished.")) -> ExportPublic:
    """Export a succeeded run. The same options twice give the same export (the second time at once)."""
    result = ExportPublic(**exports.request(job_id, body, wait=wait))
    response.status_code = 202 if result.state == "running" else 200
    return result


@router.get("/{job_id}/exports", response_model=ExportsPublic)
def list_exports(job_id: str, exports: ExportsDep) -> ExportsPublic:
    data = [ExportPublic(**item) for item in exports.list(job_id)]
    return ExportsPublic(data=data, count=len(data))


@router.get("/{job_id}/exports/{key}", response_model=ExportPublic)
def get_export(job_id: str, key: str, exports: ExportsDep) -> ExportPublic:
    return ExportPublic(**exports.status(job_id, key))


@router.get("/{job_id}/exports/{key}/download", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def download_export(job_id: str, key: str, exports: ExportsDep):
    """The whole export (weights, README.md, Modelfile) streamed as a zip."""
    folder = exports.file(job_id, key, "export.json").parent
    name = f"{job_id}-{key}"
    return StreamingResponse(iter_zip(folder, name), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})


@router.get("/{job_id}/exports/{key}/files/{name}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_export_file(job_id: str, key: str, name: str, exports: ExportsDep):
    """One file of a finished export, e.g. the .gguf for llama.cpp or LM Studio."""
    return FileResponse(exports.file(job_id, key, name), filename=name, media_type="application/octet-stream")
