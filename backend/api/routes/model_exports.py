"""Export a finished run as GGUF (with an Ollama Modelfile) or as safetensors with a chosen dtype and shard size.

    POST /api/v1/jobs/{id}/export            {"format": "gguf", "quantization": "q8_0"} -> running, or the finished export
    GET  /api/v1/jobs/{id}/exports           every export of the run (finished, running, failed)
    GET  /api/v1/jobs/{id}/exports/{key}     one export: state, progress, files, download
    GET  /api/v1/jobs/{id}/exports/{key}/download        the whole export as a zip
    GET  /api/v1/jobs/{id}/exports/{key}/files/{name}    one file (e.g. the .gguf itself)
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse, StreamingResponse

from backend.api.deps import ExportsDep
from backend.api.errors import error_responses
from backend.api.schemas.exports import ExportPublic, ExportsPublic
from backend.errors import Conflict, NotFound
from backend.exports.formats import ExportSpec
from backend.zipstream import iter_zip

router = APIRouter(prefix="/jobs", tags=["exports"])


@router.post("/{job_id}/export", response_model=ExportPublic,
             responses={**error_responses(NotFound, Conflict),
                        200: {"description": "The export already existed (reused) or finished (wait=true)."},
                        202: {"description": "Started; poll GET /jobs/{id}/exports/{key}."}})
def start_export(job_id: str, body: ExportSpec, exports: ExportsDep, response: Response,
                 wait: bool = Query(False, description="Block until the export has finished.")) -> ExportPublic:
    """Export a succeeded run. The same options twice give the same export (the second time at once)."""
    result = ExportPublic(**exports.request(job_id, body, wait=wait))
    response.status_code = 202 if result.state == "running" else 200
    return result


@router.get("/{job_id}/exports", response_model=ExportsPublic, responses=error_responses(NotFound, Conflict))
def list_exports(job_id: str, exports: ExportsDep) -> ExportsPublic:
    data = [ExportPublic(**item) for item in exports.list(job_id)]
    return ExportsPublic(data=data, count=len(data))


@router.get("/{job_id}/exports/{key}", response_model=ExportPublic, responses=error_responses(NotFound, Conflict))
def get_export(job_id: str, key: str, exports: ExportsDep) -> ExportPublic:
    return ExportPublic(**exports.status(job_id, key))


@router.get("/{job_id}/exports/{key}/download", response_class=StreamingResponse,
            responses={**error_responses(NotFound, Conflict), 200: {"content": {"application/zip": {}}}})
def download_export(job_id: str, key: str, exports: ExportsDep):
    """The whole export (weights, README.md, Modelfile) streamed as a zip."""
    folder = exports.file(job_id, key, "export.json").parent
    name = f"{job_id}-{key}"
    return StreamingResponse(iter_zip(folder, name), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})


@router.get("/{job_id}/exports/{key}/files/{name}", response_class=FileResponse,
            responses={**error_responses(NotFound, Conflict),
                       200: {"content": {"application/octet-stream": {}}}})
def download_export_file(job_id: str, key: str, name: str, exports: ExportsDep):
    """One file of a finished export, e.g. the .gguf for llama.cpp or LM Studio."""
    return FileResponse(exports.file(job_id, key, name), filename=name, media_type="application/octet-stream")
