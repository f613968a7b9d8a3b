"""Turn a partial, older or foreign run config into a full, valid ``RunConfig`` for *this* studio, saying what
was left out. This is the rule set the Train form relies on when it loads a YAML file, starts from an earlier run
or a preset (``POST /api/v1/configs/normalize``), and the last step of the LLaMA-Factory import.

Pure: the studio's models and datasets come in through :class:`StudioRefs`, so this module imports no registry,
no database and no torch. What it does, in order:

1. base model and datasets are looked up; a name becomes the registered id, anything this studio does not have
   is left out with a warning (the form keeps its own choice for those);
2. fields today's schema rejects (a value out of bounds, a key it no longer knows) are left out one at a time,
   each with a warning, and take their defaults;
3. what remains is validated as a whole; a rule that spans fields and cannot be fixed by leaving one out is an
   :class:`~backend.errors.Invalid` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from backend.config.schema import RunConfig
from backend.errors import ErrorItem, Invalid

# stand-ins that let a config without a model or datasets (the form supplies them) pass validation
_MODEL_PLACEHOLDER = "\x00model"
_DATASET_PLACEHOLDER = "\x00dataset"
_NESTED = ("method", "preference", "distributed")
_MAX_DROPS = 100


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset reference as given (``ref``) and what this studio registers under it."""

    ref: str
    id: str
    name: str
    format: str


class StudioRefs(Protocol):
    """What this studio has: the API gives the model catalog and the dataset registry, tests give dicts."""

    def resolve_model(self, ref: str) -> str | None:
        """The model id (or absolute path) to train ``ref`` with, or None when this studio does not have it."""

    def resolve_dataset(self, ref: str) -> ResolvedDataset | None:
        """The registered dataset with id or name ``ref``, or None."""


@dataclass(frozen=True)
class ConfigWarning:
    """One thing not applied: which key (dotted, as in the config) and why."""

    key: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "msg": self.msg}


@dataclass
class NormalizedConfig:
    """A full run config (defaults filled in) plus what was resolved and left out on the way.

    ``config`` lacks ``base_model`` / ``datasets`` when none was given or none is known here: the caller keeps
    its own choice for them."""

    config: dict[str, Any]
    effective_learning_rate: float
    datasets: list[ResolvedDataset] = field(default_factory=list)
    val_datasets: list[ResolvedDataset] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    missing_base_model: str | None = None  # given, but not in this studio (a hub id may be downloadable)


def normalize_config(raw: dict[str, Any], refs: StudioRefs) -> NormalizedConfig:
    """``raw`` (any run-config shape the schema accepts, possibly partial) as a full config for this studio."""
    if not isinstance(raw, dict):
        raise Invalid(f"a run config is a mapping of field names to values, not {type(raw).__name__}", loc=("body",))
    config = copy.deepcopy(raw)
    warnings: list[ConfigWarning] = []
    given_model = config.get("base_model")
    model_known = _resolve_model(config, refs, warnings)
    train = _resolve_dataset_list(config, "datasets", refs, warnings)
    val = _resolve_dataset_list(config, "val_datasets", refs, warnings)
    if not train:
        config.pop("datasets", None)
    validated = _validate_leniently(config, warnings)
    dumped = validated.model_dump(mode="json")
    if not model_known:
        dumped.pop("base_model")
    if not train:
        dumped.pop("datasets")
    return NormalizedConfig(config=dumped, effective_learning_rate=validated.effective_learning_rate,
                            datasets=train, val_datasets=val, warnings=warnings,
                            missing_base_model=None if model_known or not given_model else str(given_model))


def _resolve_model(config: dict[str, Any], refs: StudioRefs, warnings: list[ConfigWarning]) -> bool:
    ref = config.get("base_model")
    if ref in (None, ""):
        config.pop("base_model", None)
        return False
    resolved = refs.resolve_model(str(ref)) if isinstance(ref, str) else None
    if resolved is None:
        warnings.append(ConfigWarning("base_model", f"base model {ref!r} is not in this studio's model list: left out, "
                                 "so the current choice stays. Put the model under the models folder, download it "
                                 "(POST /api/v1/models/download) or pick another."))
        config.pop("base_model")
        return False
    config["base_model"] = resolved
    return True


def _resolve_dataset_list(config: dict[str, Any], key: str, refs: StudioRefs,
                          warnings: list[ConfigWarning]) -> list[ResolvedDataset]:
    """Replace each entry's id/name by the registered id; entries this studio lacks leave the list."""
    entries = config.get(key)
    if entries is None:
        return []
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list):
        warnings.append(ConfigWarning(key, f"{key} must be a list of dataset ids or names; left out"))
        config.pop(key)
        return []
    kept: list[Any] = []
    resolved: list[ResolvedDataset] = []
    for entry in entries:
        ref = entry.get("id") if isinstance(entry, dict) else entry
        found = refs.resolve_dataset(ref) if isinstance(ref, str) and ref.strip() else None
        if found is None:
            warnings.append(ConfigWarning(key, f"dataset {ref!r} is not registered in this studio: left out of {key}. "
                                     "Upload it (or import its LLaMA-Factory data folder) in Datasets and pick it "
                                     "again."))
            continue
        if any(r.id == found.id for r in resolved):
            warnings.append(ConfigWarning(key, f"dataset {ref!r} is listed twice in {key}: kept once"))
            continue
        resolved.append(found)
        kept.append({**entry, "id": found.id} if isinstance(entry, dict) else found.id)
    config[key] = kept
    return resolved


def _validate_leniently(config: dict[str, Any], warnings: list[ConfigWarning]) -> RunConfig:
    """Validate, leaving out one rejected field per round (an error's location may shift once another goes)."""
    # the flat form (lora_rank, pref_beta...) folded first, so an error inside it names a field _drop can remove
    trial = RunConfig._fold_flat_method_fields(dict(config))  # type: ignore[operator]  # pydantic's validator proxy
    trial.setdefault("base_model", _MODEL_PLACEHOLDER)
    trial.setdefault("datasets", [_DATASET_PLACEHOLDER])
    for _ in range(_MAX_DROPS):
        try:
            return RunConfig.model_validate(trial)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
        error = errors[0]
        where = _drop(trial, error["loc"])
        if where is None or where in ("base_model", "datasets"):
            raise Invalid(
                "the config cannot be made valid by leaving fields out: " + _describe(error),
                errors=[ErrorItem(("body", *error["loc"]), _describe(error)) for error in errors],
                hint="change the fields named and try again",
            )
        warnings.append(ConfigWarning(where, f"{_describe(error)}: not applied, the field keeps its default"))
    raise Invalid("the config has too many invalid fields to repair", loc=("body",))


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own message
    return f"{loc}: {msg}" if loc else msg


def _drop(config: dict[str, Any], loc: Sequence[Any]) -> str | None:
    """Remove what a validation error points at: a dataset entry, a sub-config field or a top-level field.
    Returns its dotted name, or None for a rule about the whole config (nothing to remove)."""
    if not loc or loc[0] not in config:
        return None
    head = loc[0]
    value = config[head]
    if head in ("datasets", "val_datasets") and len(loc) > 1 and isinstance(value, list):
        index = loc[1]
        if isinstance(index, int) and index < len(value) and len(value) > 1:
            value.pop(index)
            return f"{head}.{index}"
    if head in _NESTED and isinstance(value, dict):
        name = next((p for p in loc[1:] if isinstance(p, str) and p in value and p != "name"), None)
        if name is not None:
            config[head] = {k: v for k, v in value.items() if k != name}
            return f"{head}.{name}"
    del config[head]
    return str(head)
