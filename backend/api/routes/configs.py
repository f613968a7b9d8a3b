"""Run configs in, full configs for this studio out: the rules the Train form relies on, behind the API.

``POST /configs/normalize`` fills a partial, older or flat (``lora_rank``-style) config with defaults, resolves
its model and dataset names, and says what it left out; ``POST /configs/from-llamafactory`` does the same for a
LLaMA-Factory training YAML, ``POST /configs/from-yaml`` for either kind of file. None creates anything.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from backend.api.deps import RegistryDep, SettingsDep
from backend.api.errors import error_responses
from backend.config.llamafactory import parse_llamafactory_yaml
from backend.config.normalize import (
    ConfigWarning,
    NormalizedConfig,
    ResolvedDataset,
    normalize_config,
)
from backend.config.yaml_input import MAX_YAML_BYTES, parse_config_yaml
from backend.config_import import StudioCatalog, import_config
from backend.errors import BadRequest, Invalid, TooLarge

router = APIRouter(prefix="/configs", tags=["configs"])


class ConfigWarningPublic(BaseModel):
    key: str = Field(description="The key not applied: a run-config field (dotted) or a LLaMA-Factory argument.")
    msg: str = Field(description="Why, and what happens instead.")


class DatasetResolved(BaseModel):
    ref: str = Field(description="The id or name as given.")
    id: str = Field(description="The registered dataset id.")
    name: str
    format: str


class ConfigPublic(BaseModel):
    config: dict[str, Any] = Field(
        description="A valid run config with every default filled in (nested method form). base_model and/or "
        "datasets are absent when none was given or none is known to this studio: the form keeps its own."
    )
    effective_learning_rate: float = Field(description="The learning rate the run will use (its default when unset).")
    datasets: list[DatasetResolved] = Field(description="Each training dataset kept, as given and as registered.")
    val_datasets: list[DatasetResolved] = Field(description="Each validation dataset kept.")
    warnings: list[ConfigWarningPublic] = Field(description="One entry per value not applied.")
    missing_base_model: str | None = Field(
        None, description="The base model as given when this studio does not have it (then absent from config); a "
        "hub id (org/name) can be fetched with POST /api/v1/models/download.")


class ConfigImportPublic(ConfigPublic):
    format: Literal["tunesmith", "llamafactory"] = Field(description="Which kind of file it was read as.")


class LlamaFactoryYaml(BaseModel):
    yaml: str = Field(..., max_length=MAX_YAML_BYTES, description="The text of a LLaMA-Factory training YAML.")


YAML_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": LlamaFactoryYaml.model_json_schema()},
    "text/yaml": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}}}


def _public(normalized: NormalizedConfig, warnings: list[ConfigWarning] | None = None) -> ConfigPublic:
    def resolved(items: list[ResolvedDataset]) -> list[DatasetResolved]:
        return [DatasetResolved(ref=d.ref, id=d.id, name=d.name, format=d.format) for d in items]

    warnings = normalized.warnings if warnings is None else warnings
    return ConfigPublic(config=normalized.config, effective_learning_rate=normalized.effective_learning_rate,
                        datasets=resolved(normalized.datasets), val_datasets=resolved(normalized.val_datasets),
                        warnings=[ConfigWarningPublic(**w.as_dict()) for w in warnings],
                        missing_base_model=normalized.missing_base_model)


@router.post("/normalize", response_model=ConfigPublic, responses=error_responses(Invalid))
def normalize(config: dict[str, Any], settings: SettingsDep, registry: RegistryDep) -> ConfigPublic:
    """A partial, older or flat run config as the full config this studio would run: defaults filled in, dataset
    names resolved to ids, and one warning per value left out (unknown model or dataset, a value today's schema
    rejects). 422 when a rule spanning several fields fails. Creates nothing."""
    return _public(normalize_config(config, StudioCatalog(settings, registry)))


async def _yaml_text(request: Request) -> str:
    """The YAML from a JSON body ``{"yaml": "..."}`` or from the raw body (text/yaml, text/plain)."""
    body = await request.body()
    if len(body) > MAX_YAML_BYTES + 1024:
        raise TooLarge(f"the body is {len(body)} bytes; a LLaMA-Factory training YAML is a few hundred "
                       f"(limit {MAX_YAML_BYTES})", loc=("body",))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text; send the YAML file's text", loc=("body",)) from None
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the body is not valid JSON (line {exc.lineno}): {exc.msg}", loc=("body",)) from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("yaml"), str):
            raise Invalid('a JSON body must be {"yaml": "<the YAML text>"}', loc=("body", "yaml"))
        text = parsed["yaml"]
    return text


@router.post("/from-llamafactory", response_model=ConfigPublic, openapi_extra=YAML_BODY,
             responses=error_responses(BadRequest, Invalid, TooLarge))
async def from_llamafactory(request: Request, settings: SettingsDep, registry: RegistryDep) -> ConfigPublic:
    """A LLaMA-Factory training YAML (``llamafactory-cli train FILE``) as a Tunesmith run config: LF's keys mapped
    to ours (stage, finetuning_type + quantization_bit, lora_*, dataset, template, cutoff_len, the training
    hyperparameters, bf16/fp16/pure_bf16, val_size, deepspeed ds_z*_config.json, pref_*/kto_*...), the model and
    datasets resolved against this studio, and one warning per key not honoured. 422 for invalid YAML (with its
    line) or a stage/method this studio does not offer. Creates nothing."""
    data = parse_llamafactory_yaml(await _yaml_text(request))
    imported = await run_in_threadpool(import_config, data, StudioCatalog(settings, registry), "llamafactory")
    return _public(imported.normalized, imported.warnings)


@router.post("/from-yaml", response_model=ConfigImportPublic, openapi_extra=YAML_BODY,
             responses=error_responses(BadRequest, Invalid, TooLarge))
async def from_yaml(request: Request, settings: SettingsDep, registry: RegistryDep) -> ConfigImportPublic:
    """A YAML file as Load config on the Train page gets it: a Tunesmith run config (what Download config wrote,
    a preset) or a LLaMA-Factory training YAML, told apart by the names only each uses (base_model/datasets/method
    vs model_name_or_path/dataset/finetuning_type...), then as /configs/normalize or /configs/from-llamafactory
    answer. ``format`` says which. Creates nothing."""
    data = parse_config_yaml(await _yaml_text(request))
    imported = await run_in_threadpool(import_config, data, StudioCatalog(settings, registry))
    return ConfigImportPublic(**_public(imported.normalized, imported.warnings).model_dump(), format=imported.format)
