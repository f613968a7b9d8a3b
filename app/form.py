"""Read the run-config schema (labels, defaults, bounds, choices) so the Train form is built from it, and turn
form values into a run config (:func:`build_config`) and a run config back into form values
(:func:`config_to_form`).

Pure pydantic introspection over :mod:`backend.config.schema`; no torch, no Gradio.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel, ValidationError

from app.form_grpo import rewards_to_rows, rows_to_rewards
from backend.config.distributed import DistributedConfig
from backend.config.grpo import GrpoConfig
from backend.config.schema import (
    PREFERENCE_STAGES,
    FreezeMethod,
    FullMethod,
    LoraMethod,
    PreferenceConfig,
    QLoraMethod,
    RunConfig,
)

# The methods in the order the form offers them, keyed by their discriminator value.
METHODS: dict[str, type[BaseModel]] = {
    "lora": LoraMethod,
    "qlora": QLoraMethod,
    "full": FullMethod,
    "freeze": FreezeMethod,
}
METHOD_LABELS = {"lora": "LoRA", "qlora": "QLoRA", "full": "Full", "freeze": "Freeze"}
# Sub-configs the form shows field by field under ``<section>.<field>`` keys.
SECTIONS: dict[str, type[BaseModel]] = {"preference": PreferenceConfig, "distributed": DistributedConfig}
# RunConfig fields the form has no widgets for (none today; a config holding one would load without it)
NOT_IN_FORM: tuple[str, ...] = ()
# Stage grpo's settings: ``grpo.<field>`` keys, ``grpo.rewards`` holding the rewards table (app.form_grpo)
GRPO_FIELDS = tuple(n for n in GrpoConfig.model_fields if n != "rewards")


@dataclass(frozen=True)
class FieldMeta:
    """What the form needs to know about one schema field."""

    name: str
    description: str
    default: Any
    kind: Literal["int", "float", "bool", "choice", "list", "str"]
    optional: bool = False
    choices: tuple[Any, ...] = ()
    item_kind: str = ""  # for lists: "int" or "str"
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @property
    def bounds_text(self) -> str:
        parts = []
        if self.ge is not None:
            parts.append(f"≥ {_num(self.ge)}")
        if self.gt is not None:
            parts.append(f"> {_num(self.gt)}")
        if self.le is not None:
            parts.append(f"≤ {_num(self.le)}")
        if self.lt is not None:
            parts.append(f"< {_num(self.lt)}")
        return ", ".join(parts)

    @property
    def info(self) -> str:
        """Description plus the allowed range, for a widget's help text."""
        bounds = self.bounds_text
        text = self.description
        if bounds:
            text += f" ({bounds})"
        if self.optional and self.kind in ("int", "float"):
            if self.default is not None:
                text += f" Empty = the default ({_num(self.default)}); 0 = none."
            else:
                text += " Empty = the default." if "default" in text.lower() else " Empty = none."
        return text


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def field_meta(model: type[BaseModel], name: str) -> FieldMeta:
    """Describe ``model.name``: its description, default, kind, choices and numeric bounds."""
    field = model.model_fields[name]
    annotation, optional = _unwrap_optional(field.annotation)
    origin = typing.get_origin(annotation)
    choices: tuple[Any, ...] = ()
    item_kind = ""
    if origin is Literal:
        kind = "choice"
        choices = typing.get_args(annotation)
    elif annotation is bool:
        kind = "bool"
    elif annotation is int:
        kind = "int"
    elif annotation is float:
        kind = "float"
    elif origin is list:
        kind = "list"
        item_kind = "int" if typing.get_args(annotation) == (int,) else "str"
    else:
        kind = "str"
    bounds: dict[str, float] = {}
    for item in field.metadata:
        for attr, cls in (("ge", at.Ge), ("gt", at.Gt), ("le", at.Le), ("lt", at.Lt)):
            if isinstance(item, cls):
                bounds[attr] = getattr(item, attr)
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    return FieldMeta(
        name=name,
        description=(field.description or "").strip(),
        default=default,
        kind=kind,  # type: ignore[arg-type]
        optional=optional,
        choices=choices,
        item_kind=item_kind,
        **bounds,
    )


def method_description(method: str) -> str:
    """The method class's docstring: one line saying what the method does."""
    cls = METHODS.get(method)
    return (cls.__doc__ or "").strip() if cls else ""


def method_fields(method: str) -> list[str]:
    """Settings a method has beyond its ``name`` discriminator."""
    cls = METHODS[method]
    return [n for n in cls.model_fields if n != "name"]


def section_fields(model: type[BaseModel]) -> list[str]:
    """The fields of a sub-config the form shows: all but a choice of one (``fsdp_version``: only 2)."""
    return [n for n in model.model_fields if not (field_meta(model, n).kind == "choice"
                                                    and len(field_meta(model, n).choices) == 1)]


def method_form_keys() -> dict[str, tuple[type[BaseModel], str]]:
    """``method.<field>`` form key -> (the first method class with that field, field name), in form order."""
    keys: dict[str, tuple[type[BaseModel], str]] = {}
    for method, cls in METHODS.items():
        for name in method_fields(method):
            keys.setdefault(f"method.{name}", (cls, name))
    return keys


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


MIXTURE_HEADERS = ["id", "dataset", "weight", "max samples"]


def _cell_number(value: Any, kind: type) -> Any:
    """A mixture-table cell as a number, None when blank; text that is no number is kept for validation to name."""
    if value is None or (isinstance(value, float) and value != value):  # blank or NaN
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value)
        except ValueError:
            return value.strip()
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def mixture_rows(selected: list[str], names: dict[str, str], table: list[list] | None) -> list[list]:
    """Rows ``[id, name, weight, max samples]`` of the mixture table for the selected dataset ids, keeping the
    weight and cap already typed for a dataset that stays selected."""
    typed = {row[0]: row[2:4] for row in table or [] if row and row[0]}
    return [[ds, names.get(ds, ds), *typed.get(ds, [None, None])] for ds in selected or []]


def mixture_entries(selected: list[str], table: list[list] | None) -> list[Any]:
    """The ``datasets`` value: plain ids when no selected dataset has a weight or a cap in the table, else one
    ``{"id", "weight"?, "max_samples"?}`` entry per dataset (blank cells left out, so the schema can say
    which dataset lacks a weight)."""
    cells = {row[0]: (_cell_number(row[2], float), _cell_number(row[3], int))
             for row in table or [] if len(row) >= 4 and row[0]}
    if not any(v not in (None, 0) if i else v is not None
               for ds in selected or [] for i, v in enumerate(cells.get(ds, ()))):
        return list(selected or [])
    entries: list[Any] = []
    for ds in selected:
        weight, cap = cells.get(ds, (None, None))
        entry: dict[str, Any] = {"id": ds}
        if weight is not None:
            entry["weight"] = weight
        if cap not in (None, 0):  # 0 = no cap, as in the max_samples field
            entry["max_samples"] = cap
        entries.append(entry)
    return entries


def build_config(values: dict[str, Any]) -> dict[str, Any]:
    """Turn form values into a RunConfig JSON body (nested ``method``), leaving out blank fields.

    ``values`` holds RunConfig field names plus ``method`` (a method name) and ``method.<field>``
    entries for the method settings, e.g. ``{"method": "lora", "method.rank": 8, "learning_rate": None}``, and
    ``preference.<field>`` entries, sent as ``preference`` only with stage dpo or kto (the others ignore them).
    ``distributed.<field>`` entries are sent as ``distributed`` with the fields that differ from the defaults;
    ``grpo.<field>`` entries and the ``grpo.rewards`` table as ``grpo``, with stage grpo only.
    Blank optional numbers are omitted so the schema default applies; a 0 in a field whose minimum
    is 1 means "none": omitted where the default is none (max_steps, max_samples), sent as null where the default
    is a number (save_steps 100, save_total_limit 2). A ``datasets.mixture`` entry (the mixture table's rows)
    turns ``datasets`` into weighted entries (see :func:`mixture_entries`). :func:`config_to_form` is the inverse.
    """
    if "datasets.mixture" in values:
        values = {**values, "datasets": mixture_entries(values.get("datasets") or [], values["datasets.mixture"])}
    method = str(values.get("method") or "lora")
    config: dict[str, Any] = {}
    for name in RunConfig.model_fields:
        if name == "method" or name not in values:
            continue
        value = values[name]
        if _blank(value):
            continue
        meta = field_meta(RunConfig, name)
        value = _coerce(meta, value)
        if meta.optional and value == 0 and ((meta.ge or 0) >= 1 or meta.gt == 0):
            if meta.default is None:
                continue  # 0 in a field that cannot be 0 means "none", which is the default
            value = None  # ... or "none" where the default is a number (save_steps)
        config[name] = value
    method_body: dict[str, Any] = {"name": method}
    cls = METHODS.get(method)
    if cls is not None:
        for name in method_fields(method):
            value = values.get(f"method.{name}")
            if _blank(value):
                continue
            method_body[name] = _coerce(field_meta(cls, name), value)
    config["method"] = method_body
    preference = {name: _coerce(field_meta(PreferenceConfig, name), values[f"preference.{name}"])
                  for name in PreferenceConfig.model_fields if not _blank(values.get(f"preference.{name}"))}
    if preference and config.get("stage") in PREFERENCE_STAGES:
        config["preference"] = preference
    distributed = {}
    for name in section_fields(DistributedConfig):
        value = values.get(f"distributed.{name}")
        meta = field_meta(DistributedConfig, name)
        if _blank(value) or (meta.optional and value in (0, "0") and (meta.ge or 0) >= 1):
            continue  # blank, or 0 where 0 is no value: the default
        value = _coerce(meta, value)
        if value != meta.default:
            distributed[name] = value
    if distributed:
        config["distributed"] = distributed
    if config.get("stage") == "grpo":
        config["grpo"] = _grpo_body(values)
    # Keep the keys in schema order so the previewed JSON reads like the schema.
    order = list(RunConfig.model_fields)
    return dict(sorted(config.items(), key=lambda kv: order.index(kv[0])))


def _grpo_body(values: dict[str, Any]) -> dict[str, Any]:
    """``grpo`` of the form: its non-blank settings and the rewards of the table (only sent with stage grpo)."""
    body = {name: _coerce(field_meta(GrpoConfig, name), values[f"grpo.{name}"])
            for name in GRPO_FIELDS if not _blank(values.get(f"grpo.{name}"))}
    return {**body, "rewards": rows_to_rewards(values.get("grpo.rewards"))}


def _coerce(meta: FieldMeta, value: Any) -> Any:
    if meta.kind in ("int", "float") and isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text  # let validation name the field and say why
        if meta.kind == "int" and number.is_integer():
            return int(number)
        return number
    if meta.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if meta.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if meta.kind == "list" and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if meta.kind == "list" and meta.item_kind == "int":
        return [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in value]
    if meta.kind == "choice" and meta.choices and isinstance(meta.choices[0], int) and isinstance(value, str):
        return int(value)
    return value


def validate_config(config: dict[str, Any]) -> list[str]:
    """Check a config body against RunConfig locally; returns readable problems (empty = valid)."""
    try:
        RunConfig.model_validate(config)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        return problems
    return []


def form_text(value: Any) -> str:
    """A number as an optional-number text box shows it (``6``, ``0.0005``, ``5e-05``): text that reads back as
    the same number."""
    return str(value)


def _form_value(meta: FieldMeta, value: Any) -> Any:
    """One config value as its widget holds it (see ``app.pages.train_fields.schema_widget``)."""
    if meta.kind in ("int", "float") and meta.optional:
        if value is None:
            return "" if meta.default is None else "0"  # "0" = none where the default is a number
        return form_text(value)
    if meta.kind == "list" and meta.item_kind == "int":
        return ", ".join(str(v) for v in value or [])
    if meta.kind == "list":
        return list(value or [])
    if meta.kind == "str" and value is None:
        return ""
    return value


def config_to_form(config: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """Form values for a run config: the inverse of :func:`build_config`.

    ``config`` may be in any form the API accepts (nested, or flat ``lora_rank``/``pref_beta`` keys as in the
    presets, or a job's stored config). Every form key gets a value, the schema default where the config says
    nothing, so applying the result also resets fields left over from before. ``names`` (dataset id -> name)
    labels the mixture table. Raises pydantic's ``ValidationError`` for a config the schema rejects.
    """
    run = RunConfig.model_validate(config)
    dumped = run.model_dump(mode="json")
    values: dict[str, Any] = {}
    for name in RunConfig.model_fields:
        if name not in ("datasets", "method", "grpo", *NOT_IN_FORM) and name not in SECTIONS:
            values[name] = _form_value(field_meta(RunConfig, name), dumped[name])
    choices = run.dataset_choices
    values["datasets"] = [c.id for c in choices]
    values["datasets.mixture"] = [[c.id, (names or {}).get(c.id, c.id), c.weight, c.max_samples] for c in choices]
    method = dumped["method"]
    values["method"] = method["name"]
    for key, (cls, name) in method_form_keys().items():
        meta = field_meta(cls, name)
        values[key] = _form_value(meta, method.get(name, meta.default))
    for section, model in SECTIONS.items():
        for name in section_fields(model):
            values[f"{section}.{name}"] = _form_value(field_meta(model, name), dumped[section][name])
    for name in GRPO_FIELDS:
        values[f"grpo.{name}"] = _form_value(field_meta(GrpoConfig, name), dumped["grpo"][name])
    values["grpo.rewards"] = rewards_to_rows(dumped["grpo"]["rewards"])
    return values
