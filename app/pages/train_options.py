"""What the Train form offers, as the backend says (``GET /api/v1/capabilities``): only the datasets the chosen
stage trains on (changing the stage drops the others, with a note), and the option values this machine refuses
marked with the reason (greyed where the widget is a radio). Nothing is guessed here: a value marked refused is
still sent if picked, and the API's 422 says the same thing."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr
from pydantic import BaseModel

from app.client import Dataset
from app.form import METHODS, field_meta
from app.i18n import DEFAULT, resolve, t
from app.pages.datasets import dataset_label
from app.pages.train_data import MIXTURE_HEADERS, dataset_choice_updates, table_value
from app.pages.train_fields import elem_id, field_info
from backend.config.distributed import DistributedConfig
from backend.config.schema import RunConfig

# Form keys whose choices the backend may refuse here -> the schema field they show (None: the method radio).
REFUSABLE: dict[str, tuple[type[BaseModel], str] | None] = {
    "method": None,
    "compute_type": (RunConfig, "compute_type"),
    "optimizer": (RunConfig, "optimizer"),
    "attn_implementation": (RunConfig, "attn_implementation"),
    "use_liger_kernel": (RunConfig, "use_liger_kernel"),
    "report_to": (RunConfig, "report_to"),
    "distributed.backend": (DistributedConfig, "backend"),
}


def dataset_catalog(datasets: list[Dataset], capabilities: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    """What the stage filter needs: every dataset's choice (label, id) and kind, and each stage's kinds (empty
    when the API could not say: then nothing is filtered)."""
    return {
        "choices": [(dataset_label(d, lang), d["id"]) for d in datasets if d.get("id")],
        "kinds": {d["id"]: d.get("kind") for d in datasets if d.get("id")},
        "stage_kinds": dict((capabilities or {}).get("stage_kinds") or {}),
    }


def stage_choices(catalog: dict[str, Any], stage: str | None) -> list[tuple[str, str]]:
    """The dataset choices for ``stage``: those whose kind it trains on."""
    choices = [tuple(c) for c in catalog.get("choices") or []]
    accepted = (catalog.get("stage_kinds") or {}).get(stage or "")
    if accepted is None:
        return choices  # type: ignore[return-value]
    return [c for c in choices if catalog["kinds"].get(c[1]) in accepted]  # type: ignore[misc]


def datasets_info(catalog: dict[str, Any], stage: str | None, lang: str) -> str:
    """The Datasets picker's help: which kinds the stage takes."""
    accepted = (catalog.get("stage_kinds") or {}).get(stage or "")
    if accepted is None:
        return t("train.datasets_help", lang)
    kinds = ", ".join(t(f"kind.{k}", lang) for k in accepted)
    return t("train.datasets_for_stage", lang, stage=stage, kinds=kinds)


def filter_for_stage(lang: str, stage: str | None, catalog: dict[str, Any] | None, selected: list[str] | None,
                     val_selected: list[str] | None, table: list[list] | None) -> tuple[Any, ...]:
    """(Datasets, validation datasets, id -> name, mixture table, note) for ``stage``: the choices it can use, the
    selections kept that it can, and a one-line note naming the datasets dropped."""
    if not catalog:  # the page has not read the dataset list yet
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
    choices = stage_choices(catalog, stage)
    datasets, val, names, rows = dataset_choice_updates(choices, selected, val_selected, table,
                                                        info=datasets_info(catalog, stage, lang))
    kept = {c[1] for c in choices}
    all_names = {value: label.split(" · ")[0] for label, value in catalog["choices"]}
    dropped = [all_names.get(d, d) for d in [*(selected or []), *(val_selected or [])] if d not in kept]
    note = t("train.stage_dropped", lang, stage=stage, names=", ".join(dropped)) if dropped else ""
    return datasets, val, names, table_value(rows, MIXTURE_HEADERS, lang), note


def _base_choices(key: str, lang: str) -> list[tuple[str, str]]:
    spec = REFUSABLE[key]
    if spec is None:
        return [(t(f"method.{m}", lang), m) for m in METHODS]
    return [(str(c), str(c)) for c in field_meta(*spec).choices]


# The capabilities' reasons are the API's English sentences; the two common shapes are said again in the UI's
# language (the value is named beside the reason already); any other reason is shown as the API wrote it.
_NEEDS_GPU = re.compile(r".+? needs a CUDA GPU(?: \([^)]*\))? and this machine has none; use (?P<instead>.+)")
_NEEDS_PACKAGE = re.compile(r".+? needs the (?P<package>\S+) package, which is not installed: (?P<fix>.+)")


def refusal_reason(reason: str, lang: str) -> str:
    """A refused option's reason in ``lang`` where its shape is known (in English: the API's own words)."""
    if lang == DEFAULT:
        return reason
    if match := _NEEDS_GPU.fullmatch(reason):
        choices = re.findall(r"'[^']*'", match["instead"]) or [match["instead"]]
        instead = (t("train.reason_either", lang, items=", ".join(choices[:-1]), last=choices[-1])
                   if len(choices) > 1 else choices[0])
        return t("train.reason_needs_gpu", lang, instead=instead)
    if match := _NEEDS_PACKAGE.fullmatch(reason):
        return t("train.reason_needs_package", lang, package=match["package"], fix=match["fix"])
    return reason


def refusal_updates(capabilities: dict[str, Any] | None, lang: str) -> tuple[list[Any], str]:
    """One update per REFUSABLE widget (its refused choices marked, their reasons under it) and the CSS that greys
    the refused choices (a radio's buttons, a dropdown's options). Without capabilities, nothing changes."""
    if capabilities is None:
        return [gr.skip() for _ in REFUSABLE], ""
    refused: dict[str, dict[str, str]] = {}
    for item in capabilities.get("refused") or []:
        refused.setdefault(str(item.get("field")), {})[str(item.get("value"))] = refusal_reason(
            str(item.get("reason")), lang)
    updates, css = [], []
    for key, spec in REFUSABLE.items():
        here = refused.get(key, {})
        choices = [(t("train.refused_choice", lang, label=label) if value in here else label, value)
                   for label, value in _base_choices(key, lang)]
        update: dict[str, Any] = {"choices": choices}
        if spec is not None:
            info = str(resolve(field_info(field_meta(*spec)), lang))
            reasons = " ".join(t("train.refused_reason", lang, value=v, reason=r) for v, r in here.items())
            update["info"] = f"{info} {reasons}".strip()
        updates.append(gr.update(**update))
        css += [f'#{elem_id(key)} label:has(input[value="{value}"]) {{ opacity: 0.45; }}' for value in here]
        css += [f'li[role=option][aria-label="{_css_text(label)}"] {{ opacity: 0.45; }}'  # a dropdown's open list
                for label, value in choices if value in here]
    style = f"<style>{' '.join(css)}</style>" if css else ""
    return updates, style


def _css_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def method_refusals(capabilities: dict[str, Any] | None, lang: str) -> str:
    """The line under the method radio for refused methods (their labels carry the mark)."""
    lines = [t("train.refused_reason", lang, value=t(f"method.{item['value']}", lang),
               reason=refusal_reason(str(item.get("reason")), lang))
             for item in (capabilities or {}).get("refused") or [] if item.get("field") == "method"]
    return " ".join(lines)
