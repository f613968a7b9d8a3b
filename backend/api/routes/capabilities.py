"""What a run config may choose on this machine: the dataset kinds of each stage and the option values the submit
checks refuse here (the Train form greys them out and shows the reason). Read-only; creates nothing."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.deps import JobsDep
from backend.jobs.capabilities import machine_refusals, stage_kinds
from backend.jobs.gpus import query_gpus

router = APIRouter(tags=["system"])


class RefusalPublic(BaseModel):
    field: str = Field(description='Dotted run-config field: "compute_type", "method" (a method name), '
                       '"distributed.backend", ...')
    value: str = Field(description="The value this machine refuses.")
    reason: str = Field(description="What POST /api/v1/jobs would answer (422) for it, with what to pick instead.")


class CapabilitiesPublic(BaseModel):
    device: str = Field(description="cuda when GPUs are visible to jobs, else cpu.")
    stage_kinds: dict[str, list[str]] = Field(
        description="Stage -> the dataset kinds (sft | preference | kto | text, as in GET /datasets) it trains on.")
    refused: list[RefusalPublic] = Field(description="Option values a job submitted here would be refused for.")


@router.get("/capabilities", response_model=CapabilitiesPublic)
def capabilities(jobs: JobsDep) -> CapabilitiesPublic:
    """The dataset kinds each stage takes and the option values (method, compute type, optimizer, attention,
    Liger, tracker, distributed backend) this machine refuses, each with the reason a submit would give."""
    gpus = jobs.runner.visible_gpus()
    return CapabilitiesPublic(
        device="cuda" if gpus else "cpu",
        stage_kinds=stage_kinds(),
        refused=[RefusalPublic(**vars(r)) for r in machine_refusals(gpus, query_gpus)],
    )
