"""Export models: one export of a run (GGUF or safetensors), its files and progress."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
