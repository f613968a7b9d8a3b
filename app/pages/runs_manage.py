"""The Runs page's housekeeping: rename the selected run, set its tags and notes, delete it (confirmed first).
Handlers are plain functions of (client, lang, inputs...); the layout is :func:`build`."""

from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, TunesmithClient
from app.i18n import localized, t
from app.i18n.switch import CANCELLED, confirm_js
from app.pages import Refresh


def parse_tags(text: str | None) -> list[str]:
    """``"baseline, lr sweep"`` -> ``["baseline", "lr sweep"]`` (commas separate tags; blanks dropped)."""
    return [tag.strip() for tag in str(text or "").split(",") if tag.strip()]


def filter_params(text: str | None) -> dict[str, str]:
    """The Runs filter box: ``tag:NAME`` words pick a tag (the last one wins), the rest is text to look for in
    ids, names, notes, tags and base models; the keyword arguments of ``client.list_jobs``."""
    words, tag = [], None
    for word in str(text or "").split():
        if word.lower().startswith("tag:") and len(word) > 4:
            tag = word[4:]
        else:
            words.append(word)
    return {key: value for key, value in (("tag", tag), ("query", " ".join(words))) if value}


def load_info(client: TunesmithClient, lang: str, job_id: str | None) -> tuple[Any, Any, Any]:
    """The selected run's name, tags (comma-separated) and notes for the fields."""
    if not job_id:
        return "", "", ""
    try:
        job = client.get_job(job_id)
    except ApiError:
        return gr.skip(), gr.skip(), gr.skip()
    return str(job.get("name") or ""), ", ".join(job.get("tags") or []), str(job.get("notes") or "")


def save_info(client: TunesmithClient, lang: str, job_id: str | None, name: str, tags: str, notes: str) -> str:
    if not job_id:
        return t("runs.select_first", lang)
    try:
        job = client.update_job(job_id, name=name.strip() or None, tags=parse_tags(tags), notes=notes or "")
    except ApiError as exc:
        return exc.as_markdown()
    return t("runs.saved_info", lang, name=job.get("name") or job_id)


def delete_run(client: TunesmithClient, lang: str, job_id: str | None) -> str:
    if job_id == CANCELLED:
        return ""
    if not job_id:
        return t("runs.select_first", lang)
    try:
        client.delete_job(job_id)
    except ApiError as exc:
        return exc.as_markdown()
    return t("runs.deleted", lang, id=job_id)


def build(client: TunesmithClient, job: gr.Dropdown, message: gr.Markdown, refresh: Refresh) -> None:
    """An accordion under the run picker: name, tags, notes, Save, Delete."""
    with gr.Accordion(t("runs.manage"), open=False, elem_id="runs-manage"):
        with gr.Row():
            name = gr.Textbox(label=t("runs.name"), max_length=120, elem_id="runs-name", scale=2)
            tags = gr.Textbox(label=t("runs.tags"), placeholder=t("runs.tags_placeholder"), elem_id="runs-tags",
                              scale=3)
        notes = gr.Textbox(label=t("runs.notes"), lines=3, max_length=10_000, elem_id="runs-notes")
        with gr.Row():
            save = gr.Button(t("runs.save_info"), size="sm", elem_id="runs-save-info")
            delete = gr.Button(t("runs.delete"), variant="stop", size="sm", elem_id="runs-delete")
    job.change(localized(partial(load_info, client)), inputs=[job], outputs=[name, tags, notes],
               show_progress="hidden")
    save.click(localized(partial(save_info, client)), inputs=[job, name, tags, notes], outputs=[message]).then(
        refresh.fn, inputs=list(refresh.inputs), outputs=list(refresh.outputs), show_progress="hidden")
    delete.click(localized(partial(delete_run, client)), inputs=[job], outputs=[message],
                 js=confirm_js("runs.confirm_delete")).then(
        refresh.fn, inputs=list(refresh.inputs), outputs=list(refresh.outputs), show_progress="hidden")
