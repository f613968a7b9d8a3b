"""/api/v1/datasets: upload, list, inspect, download, rename and delete datasets; LLaMA-Factory import/export;
a personalized copy of the identity demo.

Routes are sync ``def`` (FastAPI runs them in its threadpool); uploads are streamed from ``UploadFile.file``
to disk by the registry, never read whole into memory. The import route is ``async`` only to choose between
a multipart zip and a JSON body; its work runs in the threadpool too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import (
    APIRouter,
    File,
    Form,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as FormFile

from backend import catalog
from backend.api.deps import JobsDep, PreviewServiceDep, RegistryDep, SettingsDep
from backend.api.errors import error_responses
from backend.api.schemas import (
    DatasetCreated,
    DatasetDetail,
    DatasetPublic,
    DatasetRename,
    DatasetsPublic,
    DatasetUploaded,
    IdentityCreate,
    ImportPath,
    ImportResult,
    ImportReused,
    ImportSkipped,
)
from backend.api.upload_limit import UploadLimitRoute
from backend.config.schema import ChatTemplate
from backend.datasets import llamafactory
from backend.datasets.builtin import BUILTIN_DATASETS
from backend.datasets.columns import mapping_from_json
from backend.datasets.errors import (
    DatasetNameTaken,
    DatasetNotFound,
    DatasetReadOnly,
    DatasetTooLarge,
    ImportPathForbidden,
    ImportSourceNotFound,
    UnsupportedFileType,
)
from backend.datasets.validate import NormalizeOptions
from backend.engine_process import EngineTimedOut
from backend.errors import Conflict, EngineFailed, Invalid, NotFound

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=UploadLimitRoute)

SkipInvalid = Annotated[bool, Query(description="Leave out the records that have problems (each is listed in the "
                                                "dataset's warnings with its line or record number) instead of "
                                                "refusing the file; a file with no valid record is still refused.")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetUploaded,
             responses=error_responses(DatasetNameTaken, DatasetTooLarge, UnsupportedFileType))
def create_dataset(
    registry: RegistryDep,
    file: Annotated[UploadFile, File(description="A .json, .jsonl, .csv or .parquet file, a .txt of raw text "
                                                 "(one document per blank-line-separated block), or a .zip of "
                                                 "json/jsonl/csv/parquet files: "
                                                 "each data file of a zip becomes its own dataset, all or none.")],
    name: Annotated[str | None, Form(description="Unique name; defaults to the file name. For a zip of several "
                                                 "files, a prefix: <name>-<file stem>.")] = None,
    dedup: Annotated[bool, Query(description="Drop rows identical (after conversion) to an earlier row.")] = False,
    skip_invalid: SkipInvalid = False,
    format: Annotated[str | None, Form(description="Force a format instead of detecting it: alpaca | messages | "
                                                   "sharegpt | preference | kto | text.")] = None,
    columns: Annotated[str | None, Form(description="JSON object naming the file's fields, with LLaMA-Factory's "
                                                    "columns keys (prompt, query, response, history, system, "
                                                    "messages, chosen, rejected, kto_tag, tools) plus text, e.g. "
                                                    '{"prompt": "question", "response": "answer"}.')] = None,
    tags: Annotated[str | None, Form(description="JSON object of LLaMA-Factory's role tags for conversations "
                                                 "(role_tag, content_tag, user_tag, assistant_tag, system_tag, "
                                                 'function_tag, observation_tag), e.g. {"role_tag": "speaker"}.')] = None,
) -> DatasetUploaded:
    """Register an uploaded file; a body over the size limit is answered 413 as soon as it gets there.
    ``format``/``columns``/``tags`` override detection; an unknown format or key, or a mapped column that no
    record has, is a 422 naming it."""
    options = replace(NormalizeOptions.from_mapping(format, mapping_from_json(columns, "columns"),
                                                    mapping_from_json(tags, "tags"), dedup=dedup),
                      skip_invalid=skip_invalid)
    records = registry.create_all_from_upload(file.filename or "", file.file, name=name or None, options=options)
    created = [DatasetCreated.of(record) for record in records]
    return DatasetUploaded(**created[0].model_dump(), datasets=created)


@router.post("/identity", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic,
             responses=error_responses(DatasetNameTaken, NotFound))
def create_identity_dataset(body: IdentityCreate, registry: RegistryDep) -> DatasetPublic:
    """A copy of the built-in identity demo with ``{{name}}``/``{{author}}`` filled in, as a normal dataset
    (renamable, deletable). Fine-tune on it to give a model that name and maker."""
    src = BUILTIN_DATASETS / "identity.json"
    if not src.is_file():
        raise NotFound(f"the identity demo file {src} is missing from this installation.")
    record = registry.create_filled_copy(src, {"name": body.name, "author": body.author}, body.target_name())
    return DatasetPublic.of(record)


_IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "A zip of a LLaMA-Factory data folder "
                 "(dataset_info.json + data files, at the top or inside one top-level folder)."}}}},
    "application/json": {"schema": ImportPath.model_json_schema()},
}}}


@router.post("/import", response_model=ImportResult, openapi_extra=_IMPORT_BODY,
             responses=error_responses(ImportPathForbidden, ImportSourceNotFound, DatasetTooLarge))
async def import_llamafactory(request: Request, registry: RegistryDep, settings: SettingsDep,
                              skip_invalid: SkipInvalid = False) -> ImportResult:
    """Import a LLaMA-Factory data folder: a multipart ``file`` (zip) or a JSON body ``{"path": ...}``.

    Every dataset_info.json entry with a local file is registered under its name (``name-2`` on a clash);
    an entry whose rows are already registered (the same normalized content) is listed in ``reused`` with
    that dataset instead of being copied again; entries that cannot be used (hub URLs, multimodal data,
    missing files, invalid rows without ``skip_invalid``) are listed in ``skipped`` with the reason.
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, FormFile):
                raise Invalid("send the zip as the multipart field 'file', or a JSON body {\"path\": ...}",
                              loc=("body", "file"))
            report = await run_in_threadpool(llamafactory.import_zip, registry, upload.filename or "upload.zip",
                                             upload.file, skip_invalid)
    else:
        try:
            body = ImportPath.model_validate_json(await request.body())
        except ValueError:
            raise Invalid('send a JSON body {"path": "<folder under the import root>"} or a multipart zip in the '
                          "field 'file'", loc=("body",)) from None
        folder = llamafactory.resolve_import_folder(settings, body.path)
        report = await run_in_threadpool(llamafactory.import_folder, registry, folder, skip_invalid)
    return ImportResult(imported=[DatasetPublic.of(r) for r in report.imported],
                        skipped=[ImportSkipped(**s) for s in report.skipped],
                        reused=[ImportReused(name=name, dataset=DatasetPublic.of(r)) for name, r in report.reused])


@router.get("/export/llamafactory", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def export_llamafactory(registry: RegistryDep) -> StreamingResponse:
    """Every registered dataset as a LLaMA-Factory data folder (zip): dataset_info.json + one JSON file each."""
    return StreamingResponse(llamafactory.iter_export_zip(registry.list()), media_type="application/zip",
                             headers={"Content-Disposition": 'attachment; filename="tunesmith-datasets.zip"'})


@router.get("", response_model=DatasetsPublic)
def list_datasets(registry: RegistryDep) -> DatasetsPublic:
    records = registry.list()
    return DatasetsPublic(data=[DatasetPublic.of(r) for r in records], count=len(records))


@router.get("/{dataset_id}", response_model=DatasetDetail, responses=error_responses(DatasetNotFound))
def get_dataset(dataset_id: str, registry: RegistryDep) -> DatasetDetail:
    record = registry.require(dataset_id)
    preview = registry.preview(record.id, limit=5)
    return DatasetDetail(**DatasetPublic.of(record).model_dump(), preview=preview)


def _require_data_file(registry, dataset_id: str):
    """The dataset's record, or a 404 when it is unknown or its normalized file has gone missing."""
    record = registry.require(dataset_id)
    if not record.path.is_file():
        raise DatasetNotFound(f"dataset '{record.name}' is registered but its file is missing. Delete the dataset "
                              "and upload it again.")
    return record


@router.get("/{dataset_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(DatasetNotFound)})
def download_dataset(dataset_id: str, registry: RegistryDep) -> FileResponse:
    """The normalized data.jsonl: one row per line (see ``preview``)."""
    record = _require_data_file(registry, dataset_id)
    return FileResponse(record.path, media_type="application/x-ndjson", filename=f"{record.name}.jsonl")


@router.get("/{dataset_id}/preview", response_model=dict,
            responses=error_responses(NotFound, EngineFailed, EngineTimedOut))
def preview_dataset_for_model(
    dataset_id: str,
    registry: RegistryDep,
    settings: SettingsDep,
    previews: PreviewServiceDep,
    model: Annotated[str, Query(description="A model id from /models, or an absolute path to a local HF model.")],
    cutoff_len: Annotated[int, Query(ge=8, le=1_048_576, description="The run's cutoff_len in tokens.")] = 1024,
    samples: Annotated[int, Query(ge=0, le=20, description="How many first rows to render.")] = 3,
    train_on_prompt: Annotated[bool, Query(description="Train on prompt tokens too.")] = False,
    chat_template: Annotated[ChatTemplate, Query(description="The run's chat_template: auto = the tokenizer's own, "
                                                              "or a named layout.")] = "auto",
) -> dict:
    """The dataset as the model sees it, tokenized in a subprocess exactly as training does: ``samples`` (the
    first rows rendered through the model's chat template, as ``segments`` of ``{text, trained[, cut]}``),
    ``lengths`` (token-length stats and histogram over up to 20k rows, how many exceed ``cutoff_len``),
    ``rows``, ``tokenizer``, plus the ``model`` and ``cutoff_len`` asked for. Cached per dataset content."""
    record = _require_data_file(registry, dataset_id)
    info = catalog.resolve_model(settings, model)
    if info is None:
        raise NotFound(f"model '{model}' not found: use an id from /api/v1/models or an absolute path to a local "
                       "model.", loc=("query", "model"))
    result = previews.preview(
        sha256=record.sha256, data_path=record.path, model_path=info.path, cutoff_len=cutoff_len,
        samples=samples, train_on_prompt=train_on_prompt, chat_template=chat_template)
    return {**result, "model": info.id, "cutoff_len": cutoff_len, "train_on_prompt": train_on_prompt,
            "chat_template": chat_template}


@router.patch("/{dataset_id}", response_model=DatasetPublic,
              responses=error_responses(DatasetNotFound, DatasetNameTaken, DatasetReadOnly))
def rename_dataset(dataset_id: str, body: DatasetRename, registry: RegistryDep) -> DatasetPublic:
    return DatasetPublic.of(registry.rename(dataset_id, body.name))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=error_responses(DatasetNotFound, DatasetReadOnly))
def delete_dataset(dataset_id: str, registry: RegistryDep, jobs: JobsDep) -> Response:
    record = registry.require(dataset_id)
    if {record.id, record.name} & jobs.datasets_in_use():
        raise Conflict(f"dataset '{record.name}' is used by a queued or running job. Cancel the job or wait for it "
                       "to finish, then delete the dataset.")
    registry.delete(record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
