"""Datasets tab: upload a file or a zip of files (optionally deduplicated, with a forced format or column
mapping, with progress; see dataset_upload.py), make a personalized identity dataset, import a LLaMA-Factory
data folder, list, preview, rename, download and delete datasets, export them all, and preview a dataset as a
chosen base model sees it (chat template, trained vs masked tokens, lengths against the cutoff).

:func:`build` only lays out; the handlers below are plain functions of ``(client, lang, ...)``."""

from __future__ import annotations

import html
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, get_args

import gradio as gr
import pandas as pd

from app.client import ApiError, Dataset, TunesmithClient
from app.downloads import scratch_dir
from app.format import CONVERSATION_CSS, conversation_html, error_markdown, fmt_bytes, fmt_time
from app.i18n import DEFAULT, localized, request_lang, t
from app.i18n.switch import CANCELLED, confirm_js
from app.pages import Refresh
from app.pages.dataset_columns import build_form as build_mapping_form
from app.pages.dataset_columns import columns_found
from app.pages.dataset_errors import refusal_markdown
from app.pages.dataset_render import (
    RENDER_CSS,
    empty_render,
    length_histogram_html,
    render_samples_html,
    truncation_markdown,
)
from app.pages.dataset_upload import (  # noqa: F401  (upload_markdown, import_markdown: used by tests via here)
    FORMATS,
    import_markdown,
    upload_file,
    upload_markdown,
)
from backend.config.schema import ChatTemplate, RunConfig

FILE_TYPES = [".json", ".jsonl", ".csv", ".parquet", ".txt", ".zip"]
TABLE_KEYS = ["name", "format", "rows", "size", "created", "id"]
DEFAULT_CUTOFF = RunConfig.model_fields["cutoff_len"].default
TAGS_PLACEHOLDER = '{"role_tag": "speaker", "user_tag": "customer"}'  # the JSON box is for role tags now
KINDS = ("sft", "preference", "kto", "text")  # what a dataset can train (the API's "kind"), shown in its label


@dataclass
class DatasetsPage:
    table: gr.Dataframe
    select: gr.Dropdown
    refresh: Refresh


def dataset_label(ds: Dataset, lang: str = DEFAULT) -> str:
    rows = ds.get("num_rows")
    extra = " · " + t("datasets.rows", lang, rows=rows) if rows is not None else ""
    builtin = " · " + t("datasets.builtin", lang) if ds.get("builtin") else ""
    kind = " · " + t(f"kind.{ds['kind']}", lang) if ds.get("kind") in KINDS else ""
    return f"{ds.get('name', ds.get('id'))}{extra}{kind}{builtin}"


def table_columns(lang: str) -> list[str]:
    return [t(f"datasets.col_{key}", lang) for key in TABLE_KEYS]


def datasets_frame(items: list[Dataset], lang: str = DEFAULT) -> pd.DataFrame:
    rows = [[ds.get("name", ""), ds.get("format", ""), ds.get("num_rows", ""), fmt_bytes(ds.get("size_bytes")),
             fmt_time(ds.get("created_at")), ds.get("id", "")] for ds in items]
    return pd.DataFrame(rows, columns=table_columns(lang))


def empty_preview(lang: str) -> str:
    return f'<div class="ts-empty">{html.escape(t("datasets.pick_to_preview", lang))}</div>'


# -- layout ------------------------------------------------------------------------------------------------


def _upload_column() -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["file"] = gr.File(label=t("datasets.file"), file_types=FILE_TYPES, file_count="single", elem_id="ds-file",
                        height=140)
    c["name"] = gr.Textbox(label=t("datasets.name"), elem_id="ds-name", placeholder=t("datasets.name_placeholder"))
    c["dedup"] = gr.Checkbox(label=t("datasets.dedup"), value=False, elem_id="ds-dedup")
    c["skip_invalid"] = gr.Checkbox(label=t("datasets.skip_invalid"), value=False, elem_id="ds-skip-invalid")
    with gr.Accordion(t("datasets.advanced"), open=False, elem_id="ds-advanced") as c["advanced"]:
        gr.Markdown(t("datasets.advanced_help"), elem_classes="ts-hint")
        c["format"] = gr.Dropdown(label=t("datasets.format"), choices=FORMATS, value="auto", elem_id="ds-format")
        c["form"] = build_mapping_form()
        c["columns"] = gr.Textbox(label=t("datasets.columns"), placeholder=TAGS_PLACEHOLDER, lines=2,
                                  elem_id="ds-columns")
    c["upload"] = gr.Button(t("datasets.upload"), variant="primary", elem_id="ds-upload")
    c["status"] = gr.Markdown(elem_id="ds-status")
    with gr.Accordion(t("datasets.identity"), open=False, elem_id="ds-identity"):
        gr.Markdown(t("datasets.identity_help"), elem_classes="ts-hint")
        c["identity_name"] = gr.Textbox(label=t("datasets.identity_name"), placeholder=t("datasets.identity_name_ph"),
                                        max_length=64, elem_id="ds-identity-name")
        c["identity_author"] = gr.Textbox(label=t("datasets.identity_author"),
                                          placeholder=t("datasets.identity_author_ph"), max_length=64,
                                          elem_id="ds-identity-author")
        c["identity_create"] = gr.Button(t("datasets.identity_create"), elem_id="ds-identity-create")
        c["identity_status"] = gr.Markdown(elem_id="ds-identity-status")
    with gr.Accordion(t("datasets.import"), open=False, elem_id="ds-import"):
        gr.Markdown(t("datasets.import_help"), elem_classes="ts-hint")
        c["import_file"] = gr.File(label=t("datasets.import_file"), file_types=[".zip"], file_count="single",
                                   height=110, elem_id="ds-import-file")
        c["import_skip_invalid"] = gr.Checkbox(label=t("datasets.skip_invalid"), value=False,
                                               elem_id="ds-import-skip-invalid")
        c["import_run"] = gr.Button(t("datasets.import_run"), elem_id="ds-import-run")
        c["import_status"] = gr.Markdown(elem_id="ds-import-status")
    return c


def _list_column() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row(equal_height=True):
        gr.Markdown(t("datasets.registered"))
        c["export_lf"] = gr.Button(t("datasets.export_lf"), size="sm", scale=0, min_width=230,
                                   elem_id="ds-export-lf")
        c["refresh"] = gr.Button(t("datasets.refresh"), size="sm", scale=0, min_width=100, elem_id="ds-refresh")
    c["table"] = gr.Dataframe(value=datasets_frame([]), interactive=False, wrap=True, max_height=320,
                              elem_id="ds-table", show_label=False)
    gr.Markdown(t("datasets.click_row"), elem_classes="ts-hint")
    c["select"] = gr.Dropdown(label=t("datasets.dataset"), choices=[], value=None, elem_id="ds-select")
    with gr.Row(equal_height=True):
        c["new_name"] = gr.Textbox(label=t("datasets.rename_to"), placeholder=t("datasets.pick_first"), scale=3,
                                   min_width=180, elem_id="ds-rename-name")
        c["rename"] = gr.Button(t("datasets.rename"), size="sm", scale=0, min_width=90, elem_id="ds-rename")
    with gr.Row():
        c["download"] = gr.Button(t("datasets.download"), size="sm", elem_id="ds-download")
        c["delete"] = gr.Button(t("datasets.delete"), variant="stop", size="sm", elem_id="ds-delete")
    c["action_status"] = gr.Markdown(elem_id="ds-action-status")
    c["download_file"] = gr.File(label=t("datasets.ready"), visible=False, interactive=False,
                                 elem_id="ds-download-file")
    c["preview"] = gr.HTML(value=empty_preview(DEFAULT), css_template=CONVERSATION_CSS, js_on_load=None,
                           elem_id="ds-preview")
    return c


def _render_section() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(t("datasets.render_title"))
    gr.Markdown(t("datasets.render_help"), elem_classes="ts-hint")
    with gr.Row(equal_height=True):
        c["model"] = gr.Dropdown(label=t("train.base_model"), choices=[], value=None, scale=3, min_width=180,
                                 elem_id="ds-render-model")
        c["cutoff"] = gr.Number(label=t("field.cutoff_len"), value=DEFAULT_CUTOFF, precision=0, minimum=8, scale=2,
                                min_width=120, elem_id="ds-render-cutoff")
        c["template"] = gr.Dropdown(label=t("field.chat_template"), choices=list(get_args(ChatTemplate)),
                                    value="auto", scale=1, min_width=120, elem_id="ds-render-template")
        c["prompt"] = gr.Checkbox(label=t("field.train_on_prompt"), value=False, scale=1, min_width=120,
                                  elem_id="ds-render-prompt")
        c["render"] = gr.Button(t("datasets.render"), variant="secondary", scale=0, min_width=100,
                                elem_id="ds-render")
    c["truncation"] = gr.Markdown(elem_id="ds-truncation")
    c["length_plot"] = gr.HTML(value="", css_template=RENDER_CSS, js_on_load=None, elem_id="ds-length-plot")
    c["html"] = gr.HTML(value=empty_render(), css_template=RENDER_CSS, js_on_load=None, elem_id="ds-render-html")
    return c


def build(client: TunesmithClient) -> DatasetsPage:
    gr.Markdown(t("datasets.intro"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            up = _upload_column()
        with gr.Column(scale=3, min_width=400):
            ls = _list_column()
            rd = _render_section()
    table, select = ls["table"], ls["select"]

    def on(handler):  # a handler of (client, lang, ...) as a Gradio callback
        return localized(partial(handler, client))

    up["upload"].click(upload_handler(client), inputs=[up["file"], up["name"], up["dedup"], up["format"],
                                                       up["columns"], up["skip_invalid"], up["form"]["picked"]],
                       outputs=[up["status"], table, select, up["file"], up["advanced"]])
    up["file"].change(localized(columns_found), inputs=[up["file"]],
                      outputs=[up["form"]["found"], *up["form"]["pickers"], up["form"]["picked"]],
                      show_progress="hidden")
    up["identity_create"].click(on(do_identity), inputs=[up["identity_name"], up["identity_author"]],
                                outputs=[up["identity_status"], table, select])
    up["import_run"].click(on(do_import), inputs=[up["import_file"], up["import_skip_invalid"]],
                           outputs=[up["import_status"], table, select, up["import_file"]])
    ls["refresh"].click(on(refresh_list), inputs=[select], outputs=[table, select])
    table.select(pick_row, outputs=[select])
    select.change(on(show_preview), inputs=[select], outputs=[ls["preview"], ls["new_name"]])
    select.change(localized(lambda lang: (gr.File(visible=False, value=None), "", "", empty_render(lang))),
                  outputs=[ls["download_file"], rd["truncation"], rd["length_plot"], rd["html"]],
                  show_progress="hidden")
    ls["rename"].click(on(do_rename), inputs=[select, ls["new_name"]],
                       outputs=[ls["action_status"], table, select, ls["preview"], ls["new_name"]])
    ls["download"].click(on(do_download), inputs=[select], outputs=[ls["action_status"], ls["download_file"]])
    ls["export_lf"].click(on(do_export_all), outputs=[ls["action_status"], ls["download_file"]])
    ls["delete"].click(on(do_delete), inputs=[select], outputs=[ls["action_status"], table, select],
                       js=confirm_js("datasets.confirm_delete"))
    rd["render"].click(on(do_render), inputs=[select, rd["model"], rd["cutoff"], rd["prompt"], rd["template"]],
                       outputs=[rd["truncation"], rd["length_plot"], rd["html"]])
    return DatasetsPage(table=table, select=select,
                        refresh=Refresh(on(refresh_page), [select, rd["model"]], [table, select, rd["model"]]))


# -- handlers: plain functions of (client, lang, inputs...) -----------------------------------------------


def refresh_list(client: TunesmithClient, lang: str, current: str | None = None):
    try:
        items = client.list_datasets()
    except ApiError as exc:
        gr.Warning(t("datasets.list_failed", lang, error=exc))
        return gr.skip(), gr.skip()
    choices = [(dataset_label(ds, lang), ds["id"]) for ds in items if ds.get("id")]
    ids = {value for _, value in choices}
    return datasets_frame(items, lang), gr.Dropdown(choices=choices, value=current if current in ids else None)


def refresh_models(client: TunesmithClient, lang: str, current: str | None):
    try:
        models = client.list_models()
    except ApiError as exc:
        gr.Warning(t("datasets.models_failed", lang, error=exc))
        return gr.skip()
    ids = [m["id"] for m in models if m.get("id")]
    return gr.Dropdown(choices=ids, value=current if current in ids else (ids[0] if ids else None))


def refresh_page(client: TunesmithClient, lang: str, current: str | None, model: str | None):
    return (*refresh_list(client, lang, current), refresh_models(client, lang, model))


def do_render(client: TunesmithClient, lang: str, dataset_id: str | None, model: str | None, cutoff: float | None,
              train_on_prompt: bool, chat_template: str | None):
    if not dataset_id or not model:
        return t("datasets.pick_dataset_and_model", lang), gr.skip(), gr.skip()
    cutoff_len = int(cutoff or DEFAULT_CUTOFF)
    try:
        result = client.preview_dataset(dataset_id, model, cutoff_len=cutoff_len,
                                        train_on_prompt=bool(train_on_prompt), chat_template=chat_template or "auto")
    except ApiError as exc:
        return t("datasets.render_failed", lang) + "\n\n" + error_markdown(exc, lang), "", empty_render(lang)
    return (truncation_markdown(result, cutoff_len, lang),
            length_histogram_html(result.get("lengths") or {}, cutoff_len, lang), render_samples_html(result, lang))


def upload_handler(client: TunesmithClient):
    """The Upload button's callback: Gradio passes the request (for the language) and a progress tracker."""
    def do_upload(request: gr.Request, path: str | None, ds_name: str, drop_duplicates: bool, fmt: str | None,
                  columns_text: str, skip_invalid: bool, picked: dict | None, progress=gr.Progress()):
        lang = request_lang(request)
        if not path:
            return t("datasets.choose_file", lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        message, selected = upload_file(client, path, (ds_name or "").strip() or None, bool(drop_duplicates), fmt,
                                        columns_text, progress, lang, skip_invalid=bool(skip_invalid), picked=picked)
        if selected is None:  # a field-name refusal opens the mapping form its hint points to
            hinted = t("upload.mapping_hint", lang) in message
            return message, gr.skip(), gr.skip(), gr.skip(), gr.Accordion(open=True) if hinted else gr.skip()
        frame, dropdown = refresh_list(client, lang, selected)
        return message, frame, dropdown, None, gr.skip()
    return do_upload


def do_identity(client: TunesmithClient, lang: str, assistant: str, author: str):
    assistant, author = (assistant or "").strip(), (author or "").strip()
    if not assistant or not author:
        return t("datasets.identity_missing", lang), gr.skip(), gr.skip()
    try:
        ds = client.create_identity_dataset(assistant, author)
    except ApiError as exc:
        return t("datasets.identity_failed", lang) + "\n\n" + error_markdown(exc, lang), gr.skip(), gr.skip()
    frame, dropdown = refresh_list(client, lang, ds.get("id"))
    return (t("datasets.identity_created", lang, name=ds.get("name"), rows=ds.get("num_rows"), assistant=assistant,
              author=author), frame, dropdown)


def do_import(client: TunesmithClient, lang: str, path: str | None, skip_invalid: bool = False):
    if not path:
        return t("datasets.import_choose", lang), gr.skip(), gr.skip(), gr.skip()
    try:
        result = client.import_llamafactory_zip(path, skip_invalid=bool(skip_invalid))
    except ApiError as exc:
        return (t("datasets.import_failed", lang, file=Path(path).name) + "\n\n" + refusal_markdown(exc, lang),
                gr.skip(), gr.skip(), gr.skip())
    first = [*(result.get("imported") or []), *(r.get("dataset") or {} for r in result.get("reused") or [])]
    frame, dropdown = refresh_list(client, lang, first[0].get("id") if first else None)
    return import_markdown(result, lang=lang), frame, dropdown, None


def show_preview(client: TunesmithClient, lang: str, dataset_id: str | None):
    if not dataset_id:
        return empty_preview(lang), gr.Textbox(value="", placeholder=t("datasets.pick_first", lang), interactive=True)
    try:
        detail = client.get_dataset(dataset_id)
    except ApiError as exc:
        return f'<div class="ts-empty">{html.escape(t("datasets.load_failed", lang, error=exc))}</div>', gr.skip()
    title = t("datasets.preview_title", lang, name=detail.get("name"), format=detail.get("format"),
              rows=detail.get("num_rows"), source=detail.get("source_filename") or t("datasets.builtin", lang),
              shown=len(detail.get("preview") or []))
    if detail.get("builtin"):
        rename_box = gr.Textbox(value="", placeholder=t("datasets.builtin_no_rename", lang), interactive=False)
    else:
        rename_box = gr.Textbox(value=detail.get("name") or "", placeholder=t("datasets.new_name", lang),
                                interactive=True)
    return conversation_html(list(detail.get("preview") or []), title=title, lang=lang), rename_box


def pick_row(evt: gr.SelectData):
    row = evt.row_value or []
    return row[-1] if row else gr.skip()


def do_rename(client: TunesmithClient, lang: str, dataset_id: str | None, value: str):
    if not dataset_id:
        return t("datasets.pick_to_rename", lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    if not (value or "").strip():
        return t("datasets.type_name", lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        ds = client.rename_dataset(dataset_id, value.strip())
    except ApiError as exc:
        return (t("datasets.rename_failed", lang) + "\n\n" + error_markdown(exc, lang), gr.skip(), gr.skip(),
                gr.skip(), gr.skip())
    frame, dropdown = refresh_list(client, lang, dataset_id)
    return (t("datasets.renamed", lang, name=ds.get("name")), frame, dropdown,
            *show_preview(client, lang, dataset_id))


def do_download(client: TunesmithClient, lang: str, dataset_id: str | None):
    if not dataset_id:
        return t("datasets.pick_to_download", lang), gr.skip()
    try:
        ds = client.get_dataset(dataset_id)
        path = client.download_dataset(dataset_id, scratch_dir() / f"{ds.get('name') or dataset_id}.jsonl")
    except ApiError as exc:
        return t("datasets.download_failed", lang) + "\n\n" + error_markdown(exc, lang), gr.File(visible=False)
    return (t("datasets.download_ready", lang, file=path.name, size=fmt_bytes(path.stat().st_size),
              rows=ds.get("num_rows")), gr.File(value=str(path), visible=True))


def do_export_all(client: TunesmithClient, lang: str):
    try:
        path = client.export_llamafactory(scratch_dir() / "tunesmith-datasets.zip")
        with zipfile.ZipFile(path) as zf:
            count = sum(1 for n in zf.namelist() if n.endswith(".json") and not n.endswith("dataset_info.json"))
    except (ApiError, zipfile.BadZipFile) as exc:
        return t("datasets.export_failed", lang) + "\n\n" + error_markdown(exc, lang), gr.File(visible=False)
    return (t("datasets.export_ready", lang, file=path.name, count=count, size=fmt_bytes(path.stat().st_size)),
            gr.File(value=str(path), visible=True))


def do_delete(client: TunesmithClient, lang: str, dataset_id: str | None):
    if dataset_id == CANCELLED:
        return t("datasets.delete_cancelled", lang), gr.skip(), gr.skip()
    if not dataset_id:
        return t("datasets.pick_to_delete", lang), gr.skip(), gr.skip()
    try:
        client.delete_dataset(dataset_id)
    except ApiError as exc:
        return t("datasets.delete_failed", lang) + "\n\n" + error_markdown(exc, lang), gr.skip(), gr.skip()
    frame, dropdown = refresh_list(client, lang, None)
    return t("datasets.deleted", lang, id=dataset_id), frame, dropdown
