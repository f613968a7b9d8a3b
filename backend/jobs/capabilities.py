"""What this machine and studio accept, asked of the submit-time rules themselves (no second copy of them): which
dataset kinds each stage trains on (``backend.jobs.service.kind_refusal``) and which choices of the run config's
option fields ``backend.jobs.checks.check_hardware`` refuses here, with its reason. The Train form greys those
out; a job submitted with one still gets the 422. No torch."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from backend.config.distributed import DistributedConfig
from backend.config.schema import RunConfig, Stage
from backend.datasets.formats import KINDS
from backend.jobs.checks import JobConfigError, check_hardware
from backend.jobs.gpus import GpuInfo
from backend.jobs.service import kind_refusal

# A minimal valid config each probe changes one field of (names only: nothing is looked up).
PROBE_BASE: dict[str, Any] = {"base_model": "probe", "datasets": ["probe"]}
METHOD_NAMES = ("lora", "qlora", "full", "freeze")
# Fields whose every choice is probed: (place in the run config, the model that holds the field).
CHOICE_FIELDS: tuple[tuple[tuple[str, ...], type[BaseModel]], ...] = (
    (("compute_type",), RunConfig),
    (("optimizer",), RunConfig),
    (("attn_implementation",), RunConfig),
    (("use_liger_kernel",), RunConfig),
    (("report_to",), RunConfig),
    (("distributed", "backend"), DistributedConfig),
)


@dataclass(frozen=True)
class Refusal:
    """A value of a run-config field this machine refuses, and the reason a submit would give."""

    field: str  # dotted: "compute_type", "method" (a method name), "distributed.backend"
    value: str
    reason: str


def stage_kinds() -> dict[str, list[str]]:
    """Stage -> the dataset kinds (sft | preference | kto | text) it trains on."""
    return {stage: [kind for kind in KINDS if kind_refusal(stage, kind) is None] for stage in typing.get_args(Stage)}


def _choices(model: type[BaseModel], name: str) -> tuple[Any, ...]:
    annotation = model.model_fields[name].annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _probes() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(field, value, config body) for every method and every choice of CHOICE_FIELDS."""
    for method in METHOD_NAMES:
        yield "method", method, {**PROBE_BASE, "method": {"name": method}}
    for loc, model in CHOICE_FIELDS:
        for value in _choices(model, loc[-1]):
            body: dict[str, Any] = {**PROBE_BASE, loc[0]: value} if len(loc) == 1 else {**PROBE_BASE, loc[0]: {loc[1]: value}}
            yield ".".join(loc), str(value), body


def machine_refusals(gpus: list[int], gpu_details: Callable[[], list[GpuInfo]]) -> list[Refusal]:
    """The option values ``check_hardware`` refuses on this machine (``gpus``: the visible GPU indexes), each with
    the refusal's message. Only a refusal of the probed field itself counts (another field's is not about it)."""
    refused = []
    for field, value, body in _probes():
        try:
            config = RunConfig.model_validate(body)
        except ValidationError:
            continue  # a choice that needs other settings too (the schema says so when it is picked)
        try:
            check_hardware(config, gpus, gpu_details)
        except JobConfigError as exc:
            if ".".join(map(str, exc.loc)) == field:
                refused.append(Refusal(field=field, value=value, reason=str(exc)))
    return refused
