"""Export tab: download a finished run's LoRA adapter, or merge it into the base model and download that.

Zips are fetched from the API into a private temp folder and handed to a ``gr.DownloadButton``;
folders older than an hour are removed on the next fetch.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gradio as gr
import pandas as pd

from app.client import ApiError, Job, TunesmithClient
from app.downloads import scratch_dir
from app.format import error_markdown, fmt_bytes, fmt_time, state_text
from app.i18n import DEFAULT, localized, request_lang, t
from app.pages import Refresh, export_formats
from app.pages.runs import job_label


@dataclass
class ExportPage:
    job: gr.Dropdown
    refresh: Refresh


def zip_frame(path: Path, lang: str = DEFAULT) -> pd.DataFrame:
    with zipfile.ZipFile(path) as zf:
        rows = [[info.filename, fmt_bytes(info.file_size)] for info in zf.infolist() if not info.is_dir()]
    return pd.DataFrame(rows, columns=[t("export.col_file", lang), t("export.col_size", lang)])


def summary_markdown(job: Job, lang: str = DEFAULT) -> str:
    config = job.get("config") or {}
    method = config.get("method")
    method_name = method.get("name") if isinstance(method, dict) else method
    name = job.get("name")
    lines = [
        (f"**{name}** · `{job.get('id')}`" if name and name != job.get("id") else f"**`{job.get('id')}`**")
        + f" · {state_text(job.get('state'), lang)}",
        t(
            "export.summary",
            lang,
            model=config.get("base_model", "?"),
            method=method_name,
            output=job.get("output") or "—",
            finished=fmt_time(job.get("finished_at")) or "—",
        ),
    ]
    if job.get("has_merged"):
        lines.append(t("export.has_merged", lang))
    return "  \n".join(lines)


def refresh_jobs(client: TunesmithClient, lang: str, current: str | None):
    try:
        jobs = client.list_jobs()
    except ApiError as exc:
        gr.Warning(t("export.list_failed", lang, error=exc))
        return gr.skip()
    done = [j for j in jobs if j.get("state") == "succeeded" and j.get("id")]
    done.sort(key=lambda j: str(j.get("finished_at") or j.get("created_at") or ""), reverse=True)
    choices = [(job_label(j, lang), j["id"]) for j in done]
    ids = {c[1] for c in choices}
    return gr.Dropdown(choices=choices, value=current if current in ids else None)


def on_pick(client: TunesmithClient, lang: str, job_id: str | None):
    hidden = (gr.DownloadButton(visible=False, value=None), gr.Dataframe(visible=False))
    if not job_id:  # nothing to prepare: the buttons wait for a run
        idle = (gr.Button(interactive=False), gr.Button(t("export.merge", lang), interactive=False))
        return t("export.pick", lang), *idle, *hidden, *hidden, ""
    buttons = (gr.Button(interactive=True), gr.Button(t("export.merge", lang), interactive=True))
    try:
        info = client.get_job(job_id)
    except ApiError as exc:
        return error_markdown(exc, lang), *buttons, *hidden, *hidden, ""
    if info.get("output") == "model":
        buttons = (gr.Button(interactive=False), gr.Button(t("export.prepare_model", lang), interactive=True))
        return summary_markdown(info, lang), *buttons, *hidden, *hidden, t("export.full_model", lang)
    return summary_markdown(info, lang), *buttons, *hidden, *hidden, ""


def _download_updates(path: Path, files: pd.DataFrame, label_key: str, ready_key: str, job_id: str, lang: str):
    size = fmt_bytes(path.stat().st_size)
    return (
        gr.DownloadButton(value=str(path), label=t(label_key, lang, size=size), visible=True),
        gr.Dataframe(value=files, visible=True),
        t(ready_key, lang, id=job_id, count=len(files), size=size),
    )


def prepare_adapter(client: TunesmithClient, lang: str, job_id: str | None, progress: gr.Progress):
    if not job_id:
        return gr.skip(), gr.skip(), t("export.pick_first", lang)
    progress(None, desc=t("export.fetching_adapter", lang))
    try:
        path = client.download_adapter(job_id, scratch_dir() / f"adapter-{job_id}.zip")
        files = zip_frame(path, lang)
    except (ApiError, zipfile.BadZipFile) as exc:
        return (
            gr.DownloadButton(visible=False),
            gr.Dataframe(visible=False),
            t("export.adapter_failed", lang) + "\n\n" + error_markdown(exc, lang),
        )
    return _download_updates(path, files, "export.download_adapter_size", "export.adapter_ready", job_id, lang)


def prepare_merged(client: TunesmithClient, lang: str, job_id: str | None, progress: gr.Progress):
    if not job_id:
        return gr.skip(), gr.skip(), t("export.pick_first", lang)
    try:
        info = client.get_job(job_id)
        if not info.get("has_merged") and info.get("output") != "model":
            progress(None, desc=t("export.merging", lang))
            client.merge(job_id)
        progress(None, desc=t("export.fetching_merged", lang))
        path = client.download_merged(job_id, scratch_dir() / f"merged-{job_id}.zip")
        files = zip_frame(path, lang)
    except (ApiError, zipfile.BadZipFile) as exc:
        return (
            gr.DownloadButton(visible=False),
            gr.Dataframe(visible=False),
            t("export.merge_failed", lang) + "\n\n" + error_markdown(exc, lang),
        )
    return _download_updates(path, files, "export.download_merged_size", "export.merged_ready", job_id, lang)


@dataclass
class _DownloadPanel:
    prepare: gr.Button
    download: gr.DownloadButton
    files: gr.Dataframe


def _build_panel(keys: tuple[str, str, str, str], elem_ids: tuple[str, str, str]) -> _DownloadPanel:
    """One column: a prepare button, the download button it fills and the zip's file list.
    ``keys``: the head, prepare, download and file-list texts; ``elem_ids``: the three widgets' ids."""
    head, prepare_text, download_text, files_label = keys
    with gr.Column(variant="panel"):
        gr.Markdown(t(head))
        prepare = gr.Button(t(prepare_text), interactive=False, elem_id=elem_ids[0])  # until a run is picked
        download = gr.DownloadButton(t(download_text), visible=False, variant="primary", elem_id=elem_ids[1])
        files = gr.Dataframe(visible=False, interactive=False, label=t(files_label), elem_id=elem_ids[2])
    return _DownloadPanel(prepare, download, files)


def build(client: TunesmithClient) -> ExportPage:
    gr.Markdown(t("export.intro"))
    with gr.Row(equal_height=True):
        job = gr.Dropdown(label=t("export.job"), choices=[], value=None, elem_id="export-job", scale=5)
        refresh_btn = gr.Button(t("export.refresh"), size="sm", scale=0, min_width=100, elem_id="export-refresh")
    summary = gr.Markdown(t("export.pick"), elem_id="export-summary")
    with gr.Row(equal_height=False):
        adapter = _build_panel(
            ("export.adapter_head", "export.prepare_adapter", "export.download_adapter", "export.adapter_files"),
            ("adapter-prepare", "adapter-download", "adapter-files"),
        )
        merged = _build_panel(
            ("export.merged_head", "export.merge", "export.download_merged", "export.merged_files"),
            ("merge-start", "merged-download", "merged-files"),
        )
    export_formats.build(client, job)  # GGUF / safetensors exports with options, progress and sizes
    status = gr.Markdown(elem_id="export-status")

    def adapter_handler(request: gr.Request, job_id: str | None, progress: gr.Progress = gr.Progress()):
        return prepare_adapter(client, request_lang(request), job_id, progress)

    def merged_handler(request: gr.Request, job_id: str | None, progress: gr.Progress = gr.Progress()):
        return prepare_merged(client, request_lang(request), job_id, progress)

    job.change(
        localized(partial(on_pick, client)),
        inputs=[job],
        outputs=[
            summary,
            adapter.prepare,
            merged.prepare,
            adapter.download,
            adapter.files,
            merged.download,
            merged.files,
            status,
        ],
        show_progress="hidden",
    )
    adapter.prepare.click(adapter_handler, inputs=[job], outputs=[adapter.download, adapter.files, status])
    merged.prepare.click(merged_handler, inputs=[job], outputs=[merged.download, merged.files, status])
    refresh = Refresh(localized(partial(refresh_jobs, client)), [job], [job])
    refresh.on(refresh_btn.click)
    return ExportPage(job=job, refresh=refresh)
