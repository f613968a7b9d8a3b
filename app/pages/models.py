"""Models tab: the base models this studio can train (bundled, downloaded, local folders), and a download from a
model hub by its id: the size first (``POST /models/download/plan``), then the download with live progress,
cancel, and resume (starting the same model again continues what an earlier attempt fetched). A token for a gated
model goes to the server with the request and is cleared from the page once the download starts.

A downloaded model shows up in the Train tab's base model list when that tab is next opened (it re-reads the list).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, TunesmithClient
from app.i18n import localized, t
from app.pages import Refresh
from app.pages.models_view import (
    downloads_frame,
    models_frame,
    outcome_markdown,
    plan_markdown,
    progress_html,
    refusal_markdown,
    sources_markdown,
    usable_sources,
)

POLL_SECONDS = 1.0
SOURCES = ("huggingface", "modelscope")
SOURCE_NAMES = {"huggingface": "Hugging Face", "modelscope": "ModelScope"}


@dataclass
class ModelsPage:
    refresh: Refresh
    timer: gr.Timer


def refresh_lists(client: TunesmithClient, lang: str, current: str | None):
    """Models, recent downloads and the hubs to download from; follows a download still running (e.g. after the
    page was reloaded). Outputs: models table, downloads table, download id, timer, source choice, source line."""
    try:
        models, downloads = client.list_models(), client.list_model_downloads()
        sources = client.model_download_sources()
    except ApiError as exc:
        gr.Warning(t("models.list_failed", lang, error=exc))
        return (gr.skip(),) * 6
    running = next((d["id"] for d in downloads if d.get("state") == "running"), None)
    names = usable_sources(sources)
    source = gr.Radio(choices=[(SOURCE_NAMES.get(n, n), n) for n in names], value=names[0], visible=len(names) > 1)
    return (models_frame(models, lang), downloads_frame(downloads, lang), running or current,
            gr.Timer(active=running is not None), source, sources_markdown(sources, SOURCE_NAMES, lang))


def check_size(client: TunesmithClient, lang: str, repo: str, revision: str, source: str, token: str):
    """The plan: status text, and the Download button (enabled only when the model fits)."""
    if not (repo or "").strip():
        return t("models.need_repo", lang), gr.Button(interactive=False)
    try:
        plan = client.plan_model_download(repo, revision=revision, source=source, token=token)
    except ApiError as exc:
        return refusal_markdown(exc, lang), gr.Button(interactive=False)
    return plan_markdown(plan, lang), gr.Button(interactive=bool(plan.get("fits")) and not plan.get("installed"))


def start_download(client: TunesmithClient, lang: str, repo: str, revision: str, source: str, token: str):
    """Outputs: download id, timer, status, progress, token box (cleared), Download, Cancel."""
    try:
        started = client.start_model_download(repo, revision=revision, source=source, token=token)
    except ApiError as exc:
        return (gr.skip(), gr.skip(), refusal_markdown(exc, lang), gr.skip(), gr.skip(),
                gr.Button(interactive=False), gr.skip())
    return (started["id"], gr.Timer(active=True), outcome_markdown(started, lang), progress_html(started, lang), "",
            gr.Button(interactive=False), gr.Button(interactive=True))


def poll_download(client: TunesmithClient, lang: str, download_id: str | None):
    """Outputs: progress, status, timer, Cancel, models table, downloads table (the tables once it has ended)."""
    if not download_id:
        return gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip()
    try:
        download = client.get_model_download(download_id)
    except ApiError as exc:
        return gr.skip(), refusal_markdown(exc, lang), gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip()
    running = download.get("state") == "running"
    tables: tuple[Any, Any] = (gr.skip(), gr.skip())
    if not running:
        try:
            tables = (models_frame(client.list_models(), lang), downloads_frame(client.list_model_downloads(), lang))
        except ApiError:
            pass  # the outcome line still says what happened; the ↻ button reads the lists again
    return (progress_html(download, lang), outcome_markdown(download, lang), gr.Timer(active=running),
            gr.Button(interactive=running), *tables)


def cancel_download(client: TunesmithClient, lang: str, download_id: str | None):
    if not download_id:
        return gr.skip()
    try:
        client.cancel_model_download(download_id)
    except ApiError as exc:
        return refusal_markdown(exc, lang)
    return t("models.cancelling", lang)


def fill_from_download(evt: gr.SelectData):
    """A row of the recent downloads picked: its model id goes into the form (to resume an interrupted or
    cancelled download, check its size and press Download)."""
    row = getattr(evt, "row_value", None) or []
    if not row or not str(row[0]).strip():
        return gr.skip(), gr.skip()
    return str(row[0]).strip(), gr.Button(interactive=False)


def _build_form() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row(equal_height=False, elem_id="models-form"):
        c["repo"] = gr.Textbox(label=t("models.repo"), info=t("models.repo_help"), placeholder="HuggingFaceTB/SmolLM2-360M-Instruct",
                               elem_id="models-repo", scale=3, min_width=220)
        c["revision"] = gr.Textbox(label=t("models.revision"), info=t("models.revision_help"), placeholder="main",
                                   elem_id="models-revision", scale=1, min_width=140)
        # Only the hubs the server can use now are offered (refresh_lists); hidden when that is one.
        c["source"] = gr.Radio(choices=[(SOURCE_NAMES[s], s) for s in SOURCES], value="huggingface",
                               label=t("models.source"), info=t("models.source_help"), elem_id="models-source",
                               scale=2, min_width=220, visible=False)
        c["token"] = gr.Textbox(label=t("models.token"), info=t("models.token_help"), type="password",
                                elem_id="models-token", scale=2, min_width=220)
    with gr.Row(elem_id="models-actions"):
        c["plan"] = gr.Button(t("models.plan"), elem_id="models-plan", min_width=120)
        c["start"] = gr.Button(t("models.start"), variant="primary", interactive=False, elem_id="models-start",
                               min_width=120)
        c["cancel"] = gr.Button(t("models.cancel"), variant="stop", interactive=False, elem_id="models-cancel",
                                min_width=120)
    c["status"] = gr.Markdown(elem_id="models-status")
    c["progress"] = gr.HTML(elem_id="models-progress")
    return c


def build(client: TunesmithClient) -> ModelsPage:
    gr.Markdown(t("models.intro"))
    with gr.Row(equal_height=True):
        gr.Markdown(t("models.list_head"))
        refresh_btn = gr.Button(t("models.refresh"), size="sm", scale=0, min_width=110, elem_id="models-refresh")
    table = gr.Dataframe(value=models_frame([]), interactive=False, show_label=False, elem_id="models-table",
                         wrap=True)
    gr.Markdown(t("models.download_head"))
    sources_line = gr.Markdown(elem_id="models-sources")
    c = _build_form()
    with gr.Accordion(t("models.downloads_head"), open=False, elem_id="models-downloads-box"):
        downloads = gr.Dataframe(value=downloads_frame([]), interactive=False, show_label=False,
                                 elem_id="models-downloads")
    download_id = gr.State(None)
    timer = gr.Timer(POLL_SECONDS, active=False)
    inputs = [c["repo"], c["revision"], c["source"], c["token"]]

    c["plan"].click(localized(partial(check_size, client)), inputs=inputs, outputs=[c["status"], c["start"]])
    for box in (c["repo"], c["revision"], c["source"]):  # a new choice needs its size checked again
        box.input(lambda: gr.Button(interactive=False), outputs=c["start"], show_progress="hidden")
    c["start"].click(localized(partial(start_download, client)), inputs=inputs,
                     outputs=[download_id, timer, c["status"], c["progress"], c["token"], c["start"], c["cancel"]])
    timer.tick(localized(partial(poll_download, client)), inputs=[download_id],
               outputs=[c["progress"], c["status"], timer, c["cancel"], table, downloads], show_progress="hidden")
    c["cancel"].click(localized(partial(cancel_download, client)), inputs=[download_id], outputs=[c["status"]])
    downloads.select(fill_from_download, outputs=[c["repo"], c["start"]], show_progress="hidden")
    refresh = Refresh(localized(partial(refresh_lists, client)), [download_id],
                      [table, downloads, download_id, timer, c["source"], sources_line])
    refresh.on(refresh_btn.click)
    return ModelsPage(refresh=refresh, timer=timer)
