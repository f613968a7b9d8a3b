"""Datasets tab: upload a file or a zip of files (optionally deduplicated, with a forced format or column
mapping, with progress; see dataset_upload.py), make a personalized identity dataset, import a LLaMA-Factory
data folder, list, preview, rename, download and delete datasets, export them all, and preview a dataset as a
chosen base model sees it (chat template, trained vs masked tokens, lengths against the cutoff)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import gradio as gr
import pandas as pd

from app.client import ApiError, Dataset, TunesmithClient
from app.downloads import scratch_dir
from app.format import (
    CONVERSATION_CSS,
    conversation_html,
    error_markdown,
    fmt_bytes,
    fmt_time,
)
from app.i18n import DEFAULT, localized, t
from app.pages import Refresh
from app.pages.dataset_render import (
    EMPTY_RENDER,
    RENDER_CSS,
    length_histogram_html,
    render_samples_html,
    truncation_markdown,
)
from app.pages.dataset_upload import (  # noqa: F401  (upload_markdown, import_markdown: used by tests via here)
    ADVANCED_HELP,
    COLUMNS_PLACEHOLDER,
    FORMATS,
    import_markdown,
    upload_file,
    upload_markdown,
)
from backend.config.schema import ChatTemplate, RunConfig

FILE_TYPES = [".json", ".jsonl", ".csv", ".parquet", ".txt", ".zip"]
TABLE_COLUMNS = ["name", "format", "rows", "size", "created", "id"]
EMPTY_PREVIEW = '<div class="ts-empty">Pick a dataset to preview it.</div>'
DEFAULT_CUTOFF = RunConfig.model_fields["cutoff_len"].default

INTRO = """\
Upload the data you want to fine-tune on. Accepted files: **.json**, **.jsonl**, **.csv**, **.parquet**, **.txt**
(or a **.zip** of them: each file becomes its own dataset, all or none) in one of these shapes (detected automatically;
force one and map your column names under *Advanced*):
**alpaca** (`instruction`, `input`, `output`), **sharegpt** (`conversations` with `from`/`value`, tool calls too),
**messages** (OpenAI-style `role`/`content`, tool calls too), **preference** pairs (`chosen`/`rejected`, for DPO),
**KTO** (a conversation + a true/false `label`) or raw **text** (`text` records, or a .txt file: one document per
blank-line-separated block, for continued pretraining).
Every dataset is stored normalized; pick one below to see how it will be read.
"""

IDENTITY_HELP = """\
Make a copy of the built-in **identity** dataset (57 questions like *"Who are you?"*, *"Who made you?"*)
answered with your assistant's name and maker. Fine-tune on it, alone or next to other data, to give a model
that identity. The copy is named `identity-<name>` and can be renamed or deleted like any upload.
"""

IMPORT_HELP = """\
Zip a LLaMA-Factory `data` folder (`dataset_info.json` next to its data files) and upload the zip: every
entry with a local file becomes a dataset under its LLaMA-Factory name (`name-2` if taken). Entries that
cannot be used here (hub downloads, preference/KTO, images, tool calls, pre-training text) are listed with
the reason.
"""


@dataclass
class DatasetsPage:
    table: gr.Dataframe
    select: gr.Dropdown
    refresh: Refresh


def dataset_label(ds: Dataset, lang: str = DEFAULT) -> str:
    rows = ds.get("num_rows")
    extra = " · " + t("datasets.rows", lang, rows=rows) if rows is not None else ""
    builtin = " · " + t("datasets.builtin", lang) if ds.get("builtin") else ""
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
            name = gr.Textbox(label="Name (optional)", elem_id="ds-name",
                              placeholder="Defaults to the file name (a zip of several files: a name prefix)")
            dedup = gr.Checkbox(label="Deduplicate exact duplicate rows", value=False, elem_id="ds-dedup")
            with gr.Accordion("Advanced: format & column mapping", open=False, elem_id="ds-advanced"):
                gr.Markdown(ADVANCED_HELP, elem_classes="ts-hint")
                force_format = gr.Dropdown(label="Format", choices=FORMATS, value="auto", elem_id="ds-format")
                columns = gr.Textbox(label="Column mapping (JSON, optional)", placeholder=COLUMNS_PLACEHOLDER,
                                     lines=2, elem_id="ds-columns")
            upload = gr.Button("Upload dataset", variant="primary", elem_id="ds-upload")
            status = gr.Markdown(elem_id="ds-status")
            with gr.Accordion("Identity demo: give your model a name", open=False, elem_id="ds-identity"):
                gr.Markdown(IDENTITY_HELP, elem_classes="ts-hint")
                identity_name = gr.Textbox(label="Assistant name", placeholder="e.g. Ada", max_length=64,
                                           elem_id="ds-identity-name")
                identity_author = gr.Textbox(label="Author", placeholder="e.g. Acme Labs", max_length=64,
                                             elem_id="ds-identity-author")
                identity_create = gr.Button("Create identity dataset", elem_id="ds-identity-create")
                identity_status = gr.Markdown(elem_id="ds-identity-status")
            with gr.Accordion("Import from LLaMA-Factory", open=False, elem_id="ds-import"):
                gr.Markdown(IMPORT_HELP, elem_classes="ts-hint")
                import_file = gr.File(label="LLaMA-Factory data folder (.zip)", file_types=[".zip"],
                                      file_count="single", height=110, elem_id="ds-import-file")
                import_run = gr.Button("Import datasets", elem_id="ds-import-run")
                import_status = gr.Markdown(elem_id="ds-import-status")
        with gr.Column(scale=3, min_width=400):
            with gr.Row(equal_height=True):
                gr.Markdown("### Registered datasets")
                export_lf = gr.Button("Export all as LLaMA-Factory zip", size="sm", scale=0, min_width=230,
                                      elem_id="ds-export-lf")
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
            with gr.Row(equal_height=True):
                new_name = gr.Textbox(label="Rename the selected dataset to", placeholder="Pick a dataset first",
                                      scale=3, min_width=180, elem_id="ds-rename-name")
                rename = gr.Button("Rename", size="sm", scale=0, min_width=90, elem_id="ds-rename")
            with gr.Row():
                download = gr.Button("Download normalized JSONL", size="sm", elem_id="ds-download")
                delete = gr.Button("Delete selected dataset", variant="stop", size="sm", elem_id="ds-delete")
            action_status = gr.Markdown(elem_id="ds-action-status")
            download_file = gr.File(label="Ready to download", visible=False, interactive=False,
                                    elem_id="ds-download-file")
            preview = gr.HTML(value=EMPTY_PREVIEW, css_template=CONVERSATION_CSS, js_on_load=None, elem_id="ds-preview")
            gr.Markdown("### Preview as the model sees it")
            gr.Markdown("The selected dataset tokenized exactly as training will: through the base model's chat "
                        "template, with the tokens that carry loss highlighted, and its token lengths against "
                        "the cutoff.", elem_classes="ts-hint")
            with gr.Row(equal_height=True):
                render_model = gr.Dropdown(label="Base model", choices=[], value=None, scale=3, min_width=180,
                                           elem_id="ds-render-model")
                render_cutoff = gr.Number(label="Cutoff length (tokens)", value=DEFAULT_CUTOFF, precision=0,
                                          minimum=8, scale=2, min_width=120, elem_id="ds-render-cutoff")
                render_template = gr.Dropdown(label="Chat template", choices=list(get_args(ChatTemplate)), value="auto",
                                              scale=1, min_width=120, elem_id="ds-render-template")
                render_prompt = gr.Checkbox(label="Train on prompt", value=False, scale=1, min_width=120,
                                            elem_id="ds-render-prompt")
                render = gr.Button("Render", variant="secondary", scale=0, min_width=100, elem_id="ds-render")
            truncation = gr.Markdown(elem_id="ds-truncation")
            length_plot = gr.HTML(value="", css_template=RENDER_CSS, js_on_load=None, elem_id="ds-length-plot")
            render_html = gr.HTML(value=EMPTY_RENDER, css_template=RENDER_CSS, js_on_load=None,
                                  elem_id="ds-render-html")

    def refresh_list(current: str | None = None):
        try:
            items = client.list_datasets()
        except ApiError as exc:
            gr.Warning(f"Could not list datasets: {exc}")
            return gr.skip(), gr.skip()
        choices = [(dataset_label(ds), ds["id"]) for ds in items if ds.get("id")]
        ids = {value for _, value in choices}
        return datasets_frame(items), gr.Dropdown(choices=choices, value=current if current in ids else None)

    def refresh_models(current: str | None):
        try:
            models = client.list_models()
        except ApiError as exc:
            gr.Warning(f"Could not list models: {exc}")
            return gr.skip()
        ids = [m["id"] for m in models if m.get("id")]
        return gr.Dropdown(choices=ids, value=current if current in ids else (ids[0] if ids else None))

    def refresh_page(current: str | None, model: str | None):
        return (*refresh_list(current), refresh_models(model))

    def do_render(dataset_id: str | None, model: str | None, cutoff: float | None, train_on_prompt: bool,
                  chat_template: str | None):
        if not dataset_id or not model:
            return "⚠ Pick a dataset and a base model first.", gr.skip(), gr.skip()
        cutoff_len = int(cutoff or DEFAULT_CUTOFF)
        try:
            result = client.preview_dataset(dataset_id, model, cutoff_len=cutoff_len,
                                            train_on_prompt=bool(train_on_prompt),
                                            chat_template=chat_template or "auto")
        except ApiError as exc:
            return "Preview failed.\n\n" + error_markdown(exc), "", EMPTY_RENDER
        return (truncation_markdown(result, cutoff_len), length_histogram_html(result.get("lengths") or {}, cutoff_len),
                render_samples_html(result))

    def do_upload(path: str | None, ds_name: str, drop_duplicates: bool, fmt: str | None, columns_text: str,
                  progress=gr.Progress()):
        if not path:
            return "⚠ Choose a file first.", gr.skip(), gr.skip(), gr.skip()
        message, selected = upload_file(client, path, (ds_name or "").strip() or None, bool(drop_duplicates), fmt,
                                        columns_text, progress)
        if selected is None:
            return message, gr.skip(), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(selected)
        return message, frame, dropdown, None

    def do_identity(assistant: str, author: str):
        assistant, author = (assistant or "").strip(), (author or "").strip()
        if not assistant or not author:
            return "⚠ Enter both the assistant's name and its author.", gr.skip(), gr.skip()
        try:
            ds = client.create_identity_dataset(assistant, author)
        except ApiError as exc:
            return "Could not create the identity dataset.\n\n" + error_markdown(exc), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(ds.get("id"))
        return (f"✓ Created **{ds.get('name')}** ({ds.get('num_rows')} rows) answering as *{assistant}* "
                f"by *{author}*. It is selected on the right; pick it on the Train tab."), frame, dropdown

    def do_import(path: str | None):
        if not path:
            return "⚠ Choose a .zip of a LLaMA-Factory data folder first.", gr.skip(), gr.skip(), gr.skip()
        try:
            result = client.import_llamafactory_zip(path)
        except ApiError as exc:
            return f"Import of `{Path(path).name}` failed.\n\n" + error_markdown(exc), gr.skip(), gr.skip(), gr.skip()
        imported = result.get("imported") or []
        frame, dropdown = refresh_list(imported[0].get("id") if imported else None)
        return import_markdown(result), frame, dropdown, None

    def show_preview(dataset_id: str | None):
        if not dataset_id:
            return EMPTY_PREVIEW, gr.Textbox(value="", placeholder="Pick a dataset first", interactive=True)
        try:
            detail = client.get_dataset(dataset_id)
        except ApiError as exc:
            return f'<div class="ts-empty">Could not load the dataset: {exc}</div>', gr.skip()
        title = (
            f"{detail.get('name')} — {detail.get('format')}, {detail.get('num_rows')} rows"
            f" (from {detail.get('source_filename') or 'built-in'}); first {len(detail.get('preview') or [])} shown"
        )
        if detail.get("builtin"):
            rename_box = gr.Textbox(value="", placeholder="Built-in datasets cannot be renamed", interactive=False)
        else:
            rename_box = gr.Textbox(value=detail.get("name") or "", placeholder="New name", interactive=True)
        return conversation_html(list(detail.get("preview") or []), title=title), rename_box

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[-1] if row else gr.skip()

    def do_rename(dataset_id: str | None, value: str):
        if not dataset_id:
            return "⚠ Pick a dataset to rename.", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not (value or "").strip():
            return "⚠ Type the new name first.", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            ds = client.rename_dataset(dataset_id, value.strip())
        except ApiError as exc:
            return "Rename failed.\n\n" + error_markdown(exc), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(dataset_id)
        return f"✓ Renamed to **{ds.get('name')}**.", frame, dropdown, *show_preview(dataset_id)

    def do_download(dataset_id: str | None):
        if not dataset_id:
            return "⚠ Pick a dataset to download.", gr.skip()
        try:
            ds = client.get_dataset(dataset_id)
            path = client.download_dataset(dataset_id, scratch_dir() / f"{ds.get('name') or dataset_id}.jsonl")
        except ApiError as exc:
            return "Download failed.\n\n" + error_markdown(exc), gr.File(visible=False)
        return (f"✓ `{path.name}` is ready ({fmt_bytes(path.stat().st_size)}, {ds.get('num_rows')} rows, one "
                '`{"messages": [...]}` per line): click the file name below to save it.',
                gr.File(value=str(path), visible=True))

    def do_export_all():
        try:
            path = client.export_llamafactory(scratch_dir() / "tunesmith-datasets.zip")
            with zipfile.ZipFile(path) as zf:
                count = sum(1 for n in zf.namelist() if n.endswith(".json") and not n.endswith("dataset_info.json"))
        except (ApiError, zipfile.BadZipFile) as exc:
            return "Export failed.\n\n" + error_markdown(exc), gr.File(visible=False)
        return (f"✓ `{path.name}` is ready ({count} dataset{'s' if count != 1 else ''} + `dataset_info.json`, "
                f"{fmt_bytes(path.stat().st_size)}): unzip it into LLaMA-Factory's `data` folder. Click the file "
                "name below to save it.", gr.File(value=str(path), visible=True))

    def do_delete(dataset_id: str | None):
        if not dataset_id:
            return "⚠ Pick a dataset to delete.", gr.skip(), gr.skip()
        try:
            client.delete_dataset(dataset_id)
        except ApiError as exc:
            return "Delete failed.\n\n" + error_markdown(exc), gr.skip(), gr.skip()
        frame, dropdown = refresh_list(None)
        return f"Deleted dataset `{dataset_id}`.", frame, dropdown

    upload.click(do_upload, inputs=[file, name, dedup, force_format, columns], outputs=[status, table, select, file])
    identity_create.click(do_identity, inputs=[identity_name, identity_author],
                          outputs=[identity_status, table, select])
    import_run.click(do_import, inputs=[import_file], outputs=[import_status, table, select, import_file])
    refresh.click(refresh_list, inputs=[select], outputs=[table, select])
    table.select(pick_row, outputs=[select])
    select.change(show_preview, inputs=[select], outputs=[preview, new_name])
    select.change(lambda: gr.File(visible=False, value=None), outputs=[download_file], show_progress="hidden")
    rename.click(do_rename, inputs=[select, new_name], outputs=[action_status, table, select, preview, new_name])
    download.click(do_download, inputs=[select], outputs=[action_status, download_file])
    export_lf.click(do_export_all, outputs=[action_status, download_file])
    delete.click(do_delete, inputs=[select], outputs=[action_status, table, select])
    render.click(do_render, inputs=[select, render_model, render_cutoff, render_prompt, render_template],
                 outputs=[truncation, length_plot, render_html])
    select.change(lambda: ("", "", EMPTY_RENDER), outputs=[truncation, length_plot, render_html],
                  show_progress="hidden")

    return DatasetsPage(table=table, select=select,
                        refresh=Refresh(refresh_page, [select, render_model], [table, select, render_model]))
