"""Base models on this machine and the settings suggested for one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelPublic(BaseModel):
    id: str
    path: str
    bundled: bool
    model_type: str | None
    architecture: str | None
    size_bytes: int
    repo_id: str | None = Field(None, description="The hub model it was downloaded from (POST /models/download); "
                                "null for the bundled model and folders put under the models root by hand.")


class SuggestionPublic(BaseModel):
    model: str
    parameters: int = Field(description="Parameter count estimated from config.json.")
    device: str = Field(description="What the suggestion is for, e.g. 'CPU (2 cores)' or '1 × NVIDIA H100 (79 GiB free)'.")
    settings: dict[str, Any] = Field(description="RunConfig fields to use (nested method), e.g. to merge into a job.")
    notes: list[str] = Field(description="Why: size, what fits in memory, alternatives.")


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
