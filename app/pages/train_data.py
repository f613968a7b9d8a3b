"""The Train page's data section: a mixture table (weight and max samples per chosen dataset), the mixture
size and the validation datasets. The table follows the Datasets selection; ``app.form.mixture_entries``
turns it into the ``datasets`` entries of the run config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.form import mixture_rows
from app.i18n import localized, t
from backend.config.schema import RunConfig

MIXTURE_HEADERS = ("train.mixture_id", "train.mixture_dataset", "train.mixture_weight", "train.mixture_max")


def table_value(rows: list[list], header_keys: tuple[str, ...], lang: str) -> dict[str, Any]:
    """A table's new rows with its headers in ``lang``: Gradio translates the markers of a table's first headers
    only, and an update of bare rows would show them raw."""
    return {"headers": [t(key, lang) for key in header_keys], "data": rows}


def mixture_table(lang: str, selected: list[str] | None, names: dict[str, str], table: list[list] | None
                  ) -> dict[str, Any]:
    return table_value(mixture_rows(selected or [], names, table), MIXTURE_HEADERS, lang)


@dataclass
class DataSection:
    mixture: gr.Dataframe
    mixture_size: gr.components.Component
    val_datasets: gr.Dropdown
    names: gr.State  # dataset id -> display name, for the table's second column


def build_data_section(datasets: gr.Dropdown, widget: Callable[..., gr.components.Component]) -> DataSection:
    """Lay out the mixture accordion under the Datasets dropdown and keep the table in step with it."""
    with gr.Accordion(t("train.mixture_group"), open=False, elem_id="train-mixture-group"):
        gr.Markdown(t("train.mixture_intro"))
        mixture = gr.Dataframe(
            value=[],
            # Header cells are data to Gradio (its API description JSON-encodes them): the marker as text.
            headers=[str(t(key)) for key in MIXTURE_HEADERS],
            datatype=["str", "str", "number", "number"],
            type="array",
            static_columns=[0, 1],
            interactive=True,
            label=t("train.mixture"),
            elem_id="train-mixture",
        )
        with gr.Row():
            mixture_size = widget(RunConfig, "mixture_size", "mixture_size")
            val_datasets = gr.Dropdown(
                label=t("train.val_datasets"),
                info=t("train.val_datasets_help"),
                choices=[],
                multiselect=True,
                elem_id="train-val-datasets",
            )
    names = gr.State({})
    datasets.change(localized(mixture_table), inputs=[datasets, names, mixture], outputs=[mixture],
                    show_progress="hidden")
    return DataSection(mixture=mixture, mixture_size=mixture_size, val_datasets=val_datasets, names=names)


def dataset_choice_updates(choices: list[tuple[str, str]], current: list[str] | None, current_val: list[str] | None,
                           table: list[list] | None, **datasets_update: Any) -> tuple[Any, Any, dict[str, str], Any]:
    """After the dataset list is re-read: (Datasets dropdown, validation dropdown, id -> name, mixture table),
    keeping the selections that still exist; ``datasets_update`` goes to the Datasets dropdown (its help)."""
    ids = {c[1] for c in choices}
    names = {value: label.split(" · ")[0] for label, value in choices}
    kept = [d for d in (current or []) if d in ids]
    kept_val = [d for d in (current_val or []) if d in ids]
    return (gr.Dropdown(choices=choices, value=kept, multiselect=True, **datasets_update),
            gr.Dropdown(choices=choices, value=kept_val, multiselect=True), names, mixture_rows(kept, names, table))
