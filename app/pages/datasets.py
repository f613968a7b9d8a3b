"""Datasets tab: upload a file, list what the API has registered, preview and delete."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from app.client import ApiError, Dataset, TunesmithClient
from app.pages import Refresh
from app.format import CONVERSATION_CSS, conversation_html, error_markdown, fmt_bytes, fmt_time

FILE_TYPES = [".json", ".jsonl", ".csv", ".parquet"]
TABLE_COLUMNS = ["name", "format", "rows", "size", "created", "id"]

INTRO = """\
Upload the conversations you want to fine-tune on. Accepted files: **.json**, **.jsonl**, **.csv**, **.parquet**
in one of these shapes (detected automatically):
**alpaca** (`instruction`, `input`, `output`), **sharegpt** (`conversations` with `from`/`value`) or
**messages** (OpenAI-style list of `role`/`content`).
Every dataset is stored normalized as chat messages; pick one below to see how it will be read.
"""


@dataclass
class DatasetsPage:
    table: gr.Dataframe
    select: gr.Dropdown
    refresh: Refresh


def dataset_label(ds: Dataset) -> str:
    rows = ds.get("num_rows")
    extra = f" · {rows} rows" if rows is not None else ""
    builtin = " · built-in" if ds.get("builtin") else ""
    return f"{ds.get('name', ds.get('id'))}{extra}{builtin}"


def datasets_frame(items: list[Dataset]) -> pd.DataFrame:
    rows = [
        [
            ds.get("name", ""),
            ds.get("format", ""),
            ds.get("num_rows", ""),
            fmt_bytes(ds.get("size_bytes")),
            fmt_time(ds.get("created_at")),
            ds.get("id", ""),
        ]
        for ds in items
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def build(client: TunesmithClient) -> DatasetsPage:
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            file = gr.File(label="Dataset file", file_types=FILE_TYPES, file_count="single", elem_id="ds-file", height=140)
            name = gr.Textbox(label="Name (optional)", placeholder="Defaults to the file name", elem_id="ds-name")
            upload = gr.Button("Upload dataset", variant="primary", elem_id="ds-upload")
            status = gr.Markdown(elem_id="ds-status")
        with gr.Column(scale=3, min_width=400):
            with gr.Row(equal_height=True):
                gr.Markdown("### Registered datasets")
                refresh = gr.Button("↻ Refresh", size="sm", scale=0, min_width=100, elem_id="ds-refresh")
            table = gr.Dataframe(
                value=datasets_frame([]),
                headers=TABLE_COLUMNS,
                interactive=False,
                wrap=True,
                max_height=320,
                elem_id="ds-table",
                show_label=False,
            )
            gr.Markdown("Click a row, or pick a dataset here, to preview its first rows.", elem_classes="ts-hint")
            select = gr.Dropdown(label="Dataset", choices=[], value=None, elem_id="ds-select")
            preview = gr.HTML(
                value='<div class="ts-empty">Pick a dataset to preview it.</div>',
                css_template=CONVERSATION_CSS,
                js_on_load=None,
                elem_id="ds-preview",
            )
            with gr.Row():
                gr.Markdown("")
                delete = gr.Button(
                    "Delete selected dataset", variant="stop", size="sm", scale=0, min_width=200, elem_id="ds-delete"
                )

    def refresh_list(current: str | None = None):
        try:
            items = client.list_datasets()
        except ApiError as exc:
            gr.Warning(f"Could not list datasets: {exc}")
            return gr.skip(), gr.skip()
        choices = [(dataset_label(ds), ds["id"]) for ds in items if ds.get("id")]
        ids = {value for _, value in choices}
        return datasets_frame(items), gr.Dropdown(choices=choices, value=current if current in ids else None)

    def do_upload(path: str | None, ds_name: str):
        if not path:
            return "⚠ Choose a file first.", gr.skip(), gr.skip(), gr.skip()
        try:
            ds = client.upload_dataset(path, (ds_name or "").strip() or None)
        except ApiError as exc:
            return (f"Upload of `{Path(path).name}` failed.\n\n" + error_markdown(exc)), gr.skip(), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(ds.get("id"))
        message = (
            f"✓ Registered **{ds.get('name')}** — format `{ds.get('format')}`, {ds.get('num_rows')} rows, "
            f"{fmt_bytes(ds.get('size_bytes'))}.  \nid: `{ds.get('id')}`"
        )
        warnings = ds.get("warnings") or []
        if warnings:
            count = ds.get("warning_count") or len(warnings)
            lines = [f"- {w.get('location', '')}{' ' + w['field'] if w.get('field') else ''}: {w.get('message', '')}"
                     for w in warnings if isinstance(w, dict)]
            message += f"\n\n⚠ {count} warning{'s' if count != 1 else ''}:\n" + "\n".join(lines)
        return message, frame, dropdown, None

    def show_preview(dataset_id: str | None):
        if not dataset_id:
            return '<div class="ts-empty">Pick a dataset to preview it.</div>'
        try:
            detail = client.get_dataset(dataset_id)
        except ApiError as exc:
            return f'<div class="ts-empty">Could not load the dataset: {exc}</div>'
        title = (
            f"{detail.get('name')} — {detail.get('format')}, {detail.get('num_rows')} rows"
            f" (from {detail.get('source_filename') or 'built-in'}); first {len(detail.get('preview') or [])} shown"
        )
        return conversation_html(list(detail.get("preview") or []), title=title)

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[-1] if row else gr.skip()

    def do_delete(dataset_id: str | None):
        if not dataset_id:
            return "⚠ Pick a dataset to delete.", gr.skip(), gr.skip()
        try:
            client.delete_dataset(dataset_id)
        except ApiError as exc:
            return "Delete failed.\n\n" + error_markdown(exc), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(None)
        return f"Deleted dataset `{dataset_id}`.", frame, dropdown

    upload.click(do_upload, inputs=[file, name], outputs=[status, table, select, file])
    refresh.click(refresh_list, inputs=[select], outputs=[table, select])
    table.select(pick_row, outputs=[select])
    select.change(show_preview, inputs=[select], outputs=[preview])
    delete.click(do_delete, inputs=[select], outputs=[status, table, select])

    return DatasetsPage(table=table, select=select, refresh=Refresh(refresh_list, [select], [table, select]))
