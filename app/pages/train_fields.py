"""The Train form's widgets: one per run-config field, labelled, defaulted and explained from the schema
(:mod:`app.form` reads the schema; this module only lays it out as Gradio components)."""

from __future__ import annotations

from typing import Any

import gradio as gr
from pydantic import BaseModel

from app.form import FieldMeta, field_meta, form_text
from app.i18n import LANGUAGES, t

STEPS = {
    "learning_rate": 1e-5,
    "num_epochs": 1,
    "alpha": 1,
    "dropout": 0.01,
    "warmup_ratio": 0.01,
    "weight_decay": 0.01,
    "max_grad_norm": 0.1,
    "val_size": 0.01,
    "beta": 0.01,
    "sft_weight": 0.1,
    "desirable_weight": 0.1,
    "undesirable_weight": 0.1,
}
TARGET_SUGGESTIONS = ["all-linear", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LIST_SUGGESTIONS = {
    "targets": TARGET_SUGGESTIONS,
    "extra_trainable_modules": ["embed_tokens", "lm_head"],
    "trainable_modules": ["self_attn", "mlp", "input_layernorm", "post_attention_layernorm"],
    "extra_modules": ["embed_tokens", "lm_head", "norm"],
}


def _has(key: str) -> bool:
    return key in LANGUAGES["en"].messages


def field_label(name: str) -> Any:
    """The label of the schema field ``name`` (``field.<name>`` in the catalogs)."""
    return t(f"field.{name}")


def field_info(meta: FieldMeta, catalog_name: str | None = None) -> Any:
    """The help under a widget: the catalog's ``help.<catalog_name or name>`` (the schema's description for a
    field without one), the allowed range and what an empty optional number means."""
    key = f"help.{catalog_name or meta.name}"
    help_text = t(key) if _has(key) else meta.description
    optional = None
    if meta.optional and meta.kind in ("int", "float"):
        if meta.default is not None:
            optional = t("form.optional_default", default=form_text(meta.default))
        else:
            optional = t("form.optional_none")
    bounds = meta.bounds_text
    if bounds and optional is not None:
        return t("form.info_bounds_optional", help=help_text, bounds=bounds, optional=optional)
    if bounds:
        return t("form.info", help=help_text, bounds=bounds)
    if optional is not None:
        return t("form.info_optional", help=help_text, optional=optional)
    return help_text


def placeholder(name: str, fallback: str | None = None) -> Any:
    """The placeholder of an empty text widget (``ph.<name>``), or ``fallback``'s."""
    if _has(f"ph.{name}"):
        return t(f"ph.{name}")
    return t(fallback) if fallback else None


def elem_id(key: str) -> str:
    return "train-" + key.replace("method.", "").replace("_", "-")


def schema_widget(model: type[BaseModel], name: str, key: str, catalog_name: str | None = None
                  ) -> gr.components.Component:
    """One form widget for ``model.name``, labelled, defaulted and explained from the schema; ``catalog_name``
    names its ``field.*`` / ``help.*`` strings where ``name`` means something else elsewhere (grpo's ``beta``)."""
    meta = field_meta(model, name)
    common: dict[str, Any] = {"label": field_label(catalog_name or name), "info": field_info(meta, catalog_name),
                              "elem_id": elem_id(key)}
    if meta.kind == "bool":
        return gr.Checkbox(value=bool(meta.default), **common)
    if meta.kind == "choice":
        if len(meta.choices) > 4 or any(len(str(c)) > 10 for c in meta.choices):
            return gr.Dropdown(choices=list(meta.choices), value=meta.default, **common)
        return gr.Radio(choices=list(meta.choices), value=meta.default, **common)
    if meta.kind == "list" and meta.item_kind == "int":
        return gr.Textbox(value=", ".join(map(str, meta.default or [])), placeholder=placeholder(name, "ph.none"),
                          max_lines=1, **common)
    if meta.kind == "list":
        return gr.Dropdown(
            choices=LIST_SUGGESTIONS.get(name, list(meta.default or [])),
            value=list(meta.default or []),
            multiselect=True,
            allow_custom_value=True,
            **common,
        )
    if meta.kind in ("int", "float") and meta.optional:
        # gr.Number cannot show "empty" (it renders 0), so optional numbers are text with a placeholder.
        # A default other than None (save_steps 100) is shown; "0" there means None (see app.form.build_config).
        value = "" if meta.default is None else form_text(meta.default)
        return gr.Textbox(value=value, placeholder=placeholder(name, "ph.none"), max_lines=1, **common)
    if meta.kind in ("int", "float"):
        return gr.Number(
            value=meta.default,
            precision=0 if meta.kind == "int" else None,
            step=STEPS.get(name, 1),
            placeholder=placeholder(name),
            **common,
        )
    return gr.Textbox(value=meta.default or "", placeholder=placeholder(name), max_lines=1, **common)
