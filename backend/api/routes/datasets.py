"""/api/v1/datasets: upload, list, inspect, rename and delete datasets.

Routes are sync ``def`` (FastAPI runs them in its threadpool); uploads are streamed from ``UploadFile.file``
to disk by the registry, never read whole into memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile, status
from pydantic import BaseModel, Field

from backend.api.deps import RegistryDep

from backend.datasets.errors import (
    DatasetNameTaken,
    DatasetNotFound,
    DatasetReadOnly,
    DatasetTooLarge,
    DatasetValidationError,
    InvalidDatasetName,
    UnsupportedFileType,
)
from backend.datasets.registry import DatasetRecord

router = APIRouter(prefix="/datasets", tags=["datasets"])


class DatasetProblem(BaseModel):
    location: str = Field(description='Where: "line 7" (JSONL), "record 3" or "file".')
    field: str | None = None
    message: str


class DatasetPublic(BaseModel):
    id: str
    name: str
    format: str = Field(description="Detected source format: alpaca | messages | sharegpt.")
    num_rows: int
    size_bytes: int = Field(description="Size of the normalized data.jsonl.")
    created_at: datetime
    source_filename: str
    builtin: bool
    warnings: list[DatasetProblem] = Field(default_factory=list, description="First 20 warnings (duplicates, ...).")
    warning_count: int = 0

    @classmethod
    def of(cls, record: DatasetRecord) -> "DatasetPublic":
        return cls.model_validate(record.model_dump(exclude={"path", "sha256"}))


class DatasetDetail(DatasetPublic):
    preview: list[dict] = Field(description='First normalized rows: {"messages": [{role, content}, ...]}.')


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class DatasetRename(BaseModel):
    name: str


def _http_error(err: Exception) -> HTTPException:
    if isinstance(err, DatasetValidationError):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=err.as_detail())
    codes = {
        DatasetNotFound: status.HTTP_404_NOT_FOUND,
        DatasetNameTaken: status.HTTP_409_CONFLICT,
        DatasetReadOnly: status.HTTP_409_CONFLICT,
        DatasetTooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
        UnsupportedFileType: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        InvalidDatasetName: status.HTTP_422_UNPROCESSABLE_CONTENT,
    }
    code = codes[type(err)]
    if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        return HTTPException(code, detail={"message": str(err), "errors": [], "error_count": 1})
    return HTTPException(code, detail=str(err))


_KNOWN_ERRORS = (DatasetValidationError, DatasetNotFound, DatasetNameTaken, DatasetReadOnly, DatasetTooLarge,
                 UnsupportedFileType, InvalidDatasetName)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic)
def create_dataset(
    registry: RegistryDep,
    file: Annotated[UploadFile, File(description="A .json, .jsonl, .csv or .parquet file.")],
    name: Annotated[str | None, Form(description="Unique name; defaults to the file name.")] = None,
) -> DatasetPublic:
    try:
        record = registry.create_from_upload(file.filename or "", file.file, name=name or None)
    except _KNOWN_ERRORS as err:
        raise _http_error(err) from None
    return DatasetPublic.of(record)


@router.get("", response_model=DatasetsPublic)
def list_datasets(registry: RegistryDep) -> DatasetsPublic:
    records = registry.list()
    return DatasetsPublic(data=[DatasetPublic.of(r) for r in records], count=len(records))


@router.get("/{dataset_id}", response_model=DatasetDetail)
def get_dataset(dataset_id: str, registry: RegistryDep) -> DatasetDetail:
    try:
        record = registry.require(dataset_id)
        preview = registry.preview(record.id, limit=5)
    except DatasetNotFound as err:
        raise _http_error(err) from None
    return DatasetDetail(**DatasetPublic.of(record).model_dump(), preview=preview)


@router.patch("/{dataset_id}", response_model=DatasetPublic)
def rename_dataset(dataset_id: str, body: DatasetRename, registry: RegistryDep) -> DatasetPublic:
    try:
        return DatasetPublic.of(registry.rename(dataset_id, body.name))
    except _KNOWN_ERRORS as err:
        raise _http_error(err) from None


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, request: Request, registry: RegistryDep) -> Response:
    try:
        record = registry.require(dataset_id)
        jobs = getattr(request.app.state, "jobs", None)
        if jobs is not None and {record.id, record.name} & set(jobs.datasets_in_use()):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"dataset '{record.name}' is used by a queued or running job. Cancel the job or wait for "
                       "it to finish, then delete the dataset.",
            )
        registry.delete(record.id)
    except _KNOWN_ERRORS as err:
        raise _http_error(err) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
