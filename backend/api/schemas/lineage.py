"""A run's lineage (``GET /api/v1/jobs/{id}/lineage``): dataset -> run -> export."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LineageRun(BaseModel):
    id: str
    name: str | None = Field(description="None when the run was deleted since.")
    state: str | None = Field(description="queued|running|succeeded|failed|cancelled; None when deleted.")
    exists: bool = Field(description="False: the run was deleted (its id is kept in the child's config).")


class LineageDataset(BaseModel):
    id: str
    name: str = Field(description="Its name when the run was submitted.")
    role: str = Field(description='"train" or "validation".')
    format: str
    num_rows: int
    weight: float | None = Field(description="Mixture weight, when the run mixed datasets.")
    max_samples: int | None
    sha256: str | None = Field(description="Content hash of the registered data (a registered dataset never "
                               "changes); None once the dataset was deleted from the registry.")
    registered: bool = Field(description="The dataset is still in the registry.")


class LineageExport(BaseModel):
    id: str = Field(description="The export's key (gguf-q8_0, safetensors-bf16-2GB...).")
    state: str
    format: str | None = None
    quantization: str | None = None
    dtype: str | None = None
    bytes: int | None = None


class LineagePublic(BaseModel):
    job_id: str
    base_model: str | None
    datasets: list[LineageDataset] = Field(description="What the run trained on, then its validation datasets, as "
                                           "resolved at submit; empty when the run directory is gone.")
    parent: LineageRun | None = Field(description="The run this one continued from (config.init_from_run).")
    children: list[LineageRun] = Field(description="Runs that continued from this one, oldest first.")
    exports: list[LineageExport] = Field(description="Its exports (GET /jobs/{id}/exports has the details).")
