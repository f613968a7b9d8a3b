"""Runs' **Continue training**: a succeeded run opens the Train tab with the form filled from that run (its
"Start from…" handler, so the two can never fill it differently) and ``init_from_run`` set to it, so the new run
starts from its adapter or trained model; the user then picks more epochs or new data and presses Start.

Wired by :func:`wire` from ``app.main`` (the Runs page itself does not import the Train page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.i18n import DEFAULT, localized, t
from app.pages.train_config import RUN

if TYPE_CHECKING:
    from app.pages.runs import RunsPage
    from app.pages.train import TrainPage

CONTINUABLE = ("succeeded",)  # what the API continues (a stopped-and-saved run ends succeeded too)


def start_from_choice(job_id: str | None) -> str | None:
    """The Train page's "Start from…" choice of a run (``run:<id>``); None without a run."""
    return f"{RUN}{job_id}" if job_id else None


def continue_note(job_id: str | None, status: str | None, lang: str = DEFAULT) -> tuple[str, Any]:
    """The Train config status with a line saying what Continue set, and the ``init_from_run`` field's value."""
    if not job_id:
        return t("runs.select_first", lang), gr.skip()
    note = t("runs.continue_note", lang, id=job_id)
    return f"{note}\n\n{status}" if status else note, job_id


def wire(tabs: gr.Tabs, runs_page: RunsPage, train_page: TrainPage) -> None:
    """Continue training: fill the Train form from the selected run, set ``init_from_run`` to it, open Train."""
    choice = gr.State(None)
    fill = train_page.fill_from
    status = list(fill.outputs)[0]  # the "Start from…" status line, which says what was filled and the API check
    runs_page.continue_run.click(start_from_choice, inputs=[runs_page.job], outputs=[choice], show_progress="hidden").then(
        fill.fn, inputs=[choice, *list(fill.inputs)[1:]], outputs=list(fill.outputs), show_progress="hidden"
    ).then(
        localized(lambda lang, job_id, text: continue_note(job_id, text, lang)), inputs=[runs_page.job, status],
        outputs=[status, train_page.fields["init_from_run"]], show_progress="hidden",
    ).then(
        train_page.stage_filter.fn, inputs=list(train_page.stage_filter.inputs),
        outputs=list(train_page.stage_filter.outputs), show_progress="hidden",
    ).then(lambda: gr.Tabs(selected="train"), outputs=[tabs], show_progress="hidden")
