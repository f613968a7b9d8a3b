"""Datasets: the public view of a registered dataset (list, detail, upload result), rename, the identity copy
and LLaMA-Factory import."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator

from backend.datasets.formats import dataset_kind
from backend.datasets.registry import DatasetRecord


class DatasetProblem(BaseModel):
    location: str = Field(description='Where: "line 7" (JSONL), "record 3" or "file".')
    field: str | None = None
    message: str


class DatasetPublic(BaseModel):
    id: str
    name: str
    format: str = Field(description="Format: alpaca | messages | sharegpt (chat data, by its source layout) | "
                                    "preference | kto | text.")
    kind: str = Field(description="What it can train: sft | preference | kto | text (see formats.dataset_kind).")
    num_rows: int
    size_bytes: int = Field(description="Size of the normalized data.jsonl.")
    created_at: datetime
    source_filename: str
    builtin: bool
    warnings: list[DatasetProblem] = Field(default_factory=list, description="First 20 warnings (duplicates, ...).")
    warning_count: int = 0
    mapping: dict = Field(default_factory=dict, description="The format/columns/tags given at upload (or the "
                                                            "LLaMA-Factory entry's); empty when detected.")

    @classmethod
    def of(cls, record: DatasetRecord) -> DatasetPublic:
        return cls.model_validate({**record.model_dump(exclude={"path", "sha256"}),
                                   "kind": dataset_kind(record.format)})


class DatasetCreated(DatasetPublic):
    duplicates_dropped: int = Field(0, description="Exact duplicate rows dropped because dedup=true was asked for.")

    @classmethod
    def of(cls, record: DatasetRecord) -> DatasetCreated:
        return cls(**DatasetPublic.of(record).model_dump(), duplicates_dropped=record.duplicates_dropped)


class DatasetUploaded(DatasetCreated):
    """The top-level fields describe the (first) dataset created, so single-file clients need nothing else."""

    datasets: list[DatasetCreated] = Field(description="Every dataset the upload created: one for a data file, "
                                                       "one per data file of a .zip (the first is repeated at "
                                                       "the top level).")


class DatasetDetail(DatasetPublic):
    preview: list[dict] = Field(description='First normalized rows: {"messages": [...]} (+ "tools"), preference '
                                            '+ "rejected", kto + "label", or {"text": ...}.')


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class DatasetRename(BaseModel):
    name: str


IdentityText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class IdentityCreate(BaseModel):
    name: IdentityText = Field(description="The assistant's name, filled in for {{name}}.", examples=["Ada"])
    author: IdentityText = Field(description="Who made it, filled in for {{author}}.", examples=["Acme Labs"])
    dataset_name: str | None = Field(None, description='Name of the new dataset; default "identity-<name slug>".')

    @field_validator("name", "author")
    @classmethod
    def _no_braces(cls, value: str) -> str:
        if "{{" in value or "}}" in value:
            raise ValueError("must not contain '{{' or '}}'")
        return value

    def target_name(self) -> str:
        if self.dataset_name and self.dataset_name.strip():
            return self.dataset_name
        slug = re.sub(r"\W+", "-", self.name.lower()).strip("-_")[:55]
        return f"identity-{slug or 'assistant'}"


class ImportPath(BaseModel):
    path: str = Field(description="A LLaMA-Factory data folder on the server, inside the import root "
                                  "($TUNESMITH_IMPORT_ROOT, default <home>/import); relative paths start there.")


class ImportSkipped(BaseModel):
    name: str
    reason: str
    errors: list[DatasetProblem] = Field(default_factory=list, description="For an entry with invalid records: "
                                                                           "the first 20 problems, each located.")
    error_count: int = Field(0, description="How many problems the entry's file has in all.")


class ImportReused(BaseModel):
    name: str = Field(description="The dataset_info.json entry.")
    dataset: DatasetPublic = Field(description="The registered dataset with exactly the entry's normalized rows: "
                                               "it is used as it is, not copied again.")


class ImportResult(BaseModel):
    imported: list[DatasetPublic] = Field(description="Datasets created, each with its warnings (records skipped "
                                                      "by skip_invalid, {{placeholders}}, duplicates).")
    skipped: list[ImportSkipped] = Field(description="Entries not imported, each with the reason.")
    reused: list[ImportReused] = Field(default_factory=list, description="Entries whose rows were registered "
                                                                         "already (the same content).")
