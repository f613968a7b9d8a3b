"""Runs tab: every job the API knows, and a live view (loss curve, status, log tail) of the selected one.

Everything shown is re-read from the API by a timer; the only thing kept in the browser session is a
cache of metric rows already fetched, so each tick asks only for ``metrics?after=<last step>``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import pandas as pd

from app.client import TERMINAL_STATES, ApiError, Job, MetricRow, TunesmithClient
from app.format import (
    error_markdown,
    fmt_float,
    fmt_time,
    state_label,
    state_text,
)
from app.i18n import DEFAULT, localized, t
from app.i18n.switch import CANCELLED, confirm_js
from app.pages import Refresh, compare, runs_lineage, runs_manage
from app.pages.runs_card import STATUS_CSS, empty_status, status_html
from app.pages.runs_charts import CHARTS_CSS, metrics_html

TABLE_KEYS = ["id", "name", "state", "progress", "step", "loss", "method", "model", "created"]
POLL_SECONDS = 2.0
LOG_TAIL = 200


def _method_name(config: dict[str, Any]) -> str:
    method = config.get("method")
    if isinstance(method, dict):
        return str(method.get("name", ""))
    return str(method or "")


def job_label(job: Job, lang: str = DEFAULT) -> str:
    name = job.get("name") or ""
    created = fmt_time(job.get("created_at"))
    head = f"{name} · {job.get('id')}" if name else str(job.get("id"))
    return f"{head} · {state_text(job.get('state'), lang)} · {created}"


def jobs_frame(jobs: list[Job], lang: str = DEFAULT) -> pd.DataFrame:
    rows = []
    for job in jobs:
        config = job.get("config") or {}
        progress = job.get("progress")
        total = job.get("total_steps")
        rows.append(
            [
                job.get("id", ""),
                job.get("name") or "",
                state_label(job.get("state"), lang),
                f"{100 * progress:.0f}%" if isinstance(progress, (int, float)) else "",
                f"{job.get('step') or 0}/{total}" if total else str(job.get("step") or ""),
                fmt_float(job.get("latest_loss")),
                _method_name(config),
                str(config.get("base_model", "")),
                fmt_time(job.get("created_at")),
            ]
        )
    return pd.DataFrame(rows, columns=[t(f"runs.col_{key}", lang) for key in TABLE_KEYS])


def merge_metrics(cached: list[MetricRow], new: list[MetricRow]) -> list[MetricRow]:
    """Add newly fetched rows to the cache; a row is identified by its step and whether it is an eval row."""

    def key(row: MetricRow) -> tuple[Any, bool]:
        return row.get("step"), "eval_loss" in row and row.get("loss") is None

    merged = {key(r): r for r in cached}
    for row in new:
        merged[key(row)] = row
    return sorted(merged.values(), key=lambda r: (r.get("step") or 0, key(r)[1]))


def latest_samples_only(rows: list[MetricRow]) -> list[MetricRow]:
    """``rows`` with a grpo run's sampled replies kept on the newest row that has them only (the card shows no
    others), so the session cache of a long run holds numbers, not every step's text."""
    newest = next((i for i in range(len(rows) - 1, -1, -1) if rows[i].get("samples")), None)
    return [{k: v for k, v in row.items() if k != "samples"} if "samples" in row and i != newest else row
            for i, row in enumerate(rows)]


def stop_message(client: TunesmithClient, job_id: str | None, lang: str = DEFAULT) -> str:
    """Ask the API to stop the run at its next step and save it; the message says what happens next."""
    if job_id == CANCELLED:
        return t("runs.cancelled_nothing", lang)
    if not job_id:
        return t("runs.select_to_stop", lang)
    try:
        client.stop_job(job_id)
    except ApiError as exc:
        return t("runs.stop_refused", lang) + "\n\n" + error_markdown(exc, lang)
    return t("runs.stop_requested", lang, id=job_id)


def cancel_message(client: TunesmithClient, job_id: str | None, lang: str = DEFAULT) -> str:
    if job_id == CANCELLED:
        return t("runs.cancelled_nothing", lang)
    if not job_id:
        return t("runs.select_to_cancel", lang)
    try:
        job_info = client.cancel_job(job_id)
    except ApiError as exc:
        if exc.status_code == 409:
            return t("runs.already_finished", lang, id=job_id, message=exc.message)
        return t("runs.cancel_failed", lang) + "\n\n" + error_markdown(exc, lang)
    return t("runs.cancel_requested", lang, id=job_id, state=state_text(job_info.get("state"), lang))


def resume_message(client: TunesmithClient, job_id: str | None, lang: str = DEFAULT) -> str:
    if not job_id:
        return t("runs.select_to_resume", lang)
    try:
        job_info = client.resume_job(job_id)
    except ApiError as exc:
        return t("runs.resume_refused", lang) + "\n\n" + error_markdown(exc, lang)
    return t("runs.resumed", lang, id=job_id, state=state_text(job_info.get("state"), lang))


def action_updates(state: str | None) -> tuple[Any, ...]:
    """Stop / Cancel / Resume enabled only where the API would take them; Chat / Evaluate / Export shortcuts
    shown for a succeeded run."""
    done = state == "succeeded"
    return (
        gr.Button(interactive=state == "running"),
        gr.Button(interactive=state in ("queued", "running")),
        gr.Button(interactive=state in ("failed", "cancelled")),
        *(gr.Button(visible=done) for _ in SHORTCUTS),
        gr.Button(visible=done),  # Continue training (app.pages.runs_continue)
    )


SHORTCUTS = ("chat", "evaluate", "export")  # the tabs a finished run can be opened in
ACTION_BUTTONS = 4 + len(SHORTCUTS)  # stop, cancel, resume, the shortcuts, continue: what action_updates sets


@dataclass
class RunsPage:
    job: gr.Dropdown
    timer: gr.Timer
    refresh: Refresh
    shortcuts: dict[str, gr.Button]  # tab id -> the button that opens the selected run there
    continue_run: gr.Button  # Continue training: the Train tab filled from the run (app.pages.runs_continue)
    repaint: Refresh  # the selected run's card, plot and log drawn again (after a language switch)


def _layout() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(t("runs.intro"), elem_id="runs-intro")
    with gr.Row(equal_height=True):
        c["job"] = gr.Dropdown(label=t("runs.run"), choices=[], value=None, elem_id="runs-job", scale=5)
        c["filter"] = gr.Textbox(
            label=t("runs.filter"),
            placeholder=t("runs.filter_placeholder"),
            max_length=250,
            elem_id="runs-filter",
            scale=2,
        )
        with gr.Column(scale=0, min_width=150):
            c["refresh"] = gr.Button(t("runs.refresh"), size="sm", elem_id="runs-refresh")
            c["stop"] = gr.Button(t("runs.stop"), size="sm", interactive=False, elem_id="runs-stop")
            c["cancel"] = gr.Button(
                t("runs.cancel"), variant="stop", size="sm", interactive=False, elem_id="runs-cancel"
            )
            c["resume"] = gr.Button(t("runs.resume"), size="sm", interactive=False, elem_id="runs-resume")
    with gr.Row():
        for name in SHORTCUTS:
            c[f"open_{name}"] = gr.Button(t(f"runs.open_{name}"), size="sm", visible=False, elem_id=f"runs-open-{name}")
        c["continue"] = gr.Button(t("runs.continue"), size="sm", visible=False, elem_id="runs-continue")
        c["open_parent"] = gr.Button(t("lineage.open_parent"), size="sm", visible=False, elem_id="runs-open-parent")
    c["table"] = gr.Dataframe(
        value=jobs_frame([]), interactive=False, max_height=260, elem_id="runs-table", show_label=False
    )
    c["status"] = gr.HTML(empty_status(), css_template=STATUS_CSS, js_on_load=None, elem_id="runs-status")
    # loss, the stage's own curves (rewards, KL, reply length; reward margin/accuracy), grad norm, learning rate
    # (and GPU memory on a GPU) side by side, drawn as SVG (app.pages.runs_charts), then the log across the page
    c["plot"] = gr.HTML("", css_template=CHARTS_CSS, elem_id="loss-plot")
    c["logs"] = gr.Textbox(
        label=t("runs.log", lines=LOG_TAIL),
        lines=16,
        max_lines=16,
        autoscroll=True,
        interactive=False,
        elem_id="runs-logs",
    )
    c["message"] = gr.Markdown(elem_id="runs-message")
    return c


def build(client: TunesmithClient) -> RunsPage:
    c = _layout()
    with gr.Accordion(t("runs.compare"), open=False, elem_id="runs-compare"):
        compared = compare.build(client)
    timer = gr.Timer(POLL_SECONDS, active=False)  # app.main turns it on while Runs is shown
    # Session cache: {"job": id, "rows": [...], "final": bool}. Only a view cache; the API is the truth.
    cache, table_sig = gr.State({}), gr.State("")
    job = c["job"]
    buttons = [c["stop"], c["cancel"], c["resume"], *(c[f"open_{name}"] for name in SHORTCUTS), c["continue"]]
    poll_outputs = [c["status"], c["plot"], c["logs"], cache, *buttons]
    table_outputs = [c["table"], job, compared.select, table_sig]
    polled = localized(partial(poll, client))
    timer.tick(
        localized(partial(tick, client)),
        inputs=[job, cache, table_sig, c["filter"]],
        outputs=[*table_outputs, *poll_outputs],
        show_progress="hidden",
        concurrency_limit=None,
        trigger_mode="always_last",
    )
    job.change(polled, inputs=[job, cache], outputs=poll_outputs, show_progress="hidden")
    c["table"].select(pick_row, outputs=[job])
    c["refresh"].click(
        localized(partial(refresh_jobs, client)), inputs=[job, gr.State(""), c["filter"]], outputs=table_outputs
    )
    c["filter"].submit(
        localized(partial(refresh_jobs, client)), inputs=[job, gr.State(""), c["filter"]], outputs=table_outputs
    )
    for button, message, confirm in (
        (c["cancel"], cancel_message, "runs.confirm_cancel"),
        (c["stop"], stop_message, "runs.confirm_stop"),
        (c["resume"], resume_message, None),
    ):
        button.click(
            localized(lambda lang, job_id, say=message: say(client, job_id, lang)),
            inputs=[job],
            outputs=[c["message"]],
            js=confirm_js(confirm) if confirm else None,
        ).then(polled, inputs=[job, gr.State({})], outputs=poll_outputs, show_progress="hidden")
    # Keep the newest log lines in view (Textbox autoscroll does not cover the first fill).
    c["logs"].change(
        None,
        js="() => { setTimeout(() => { const t = document.querySelector('#runs-logs textarea');"
        " if (t) t.scrollTop = t.scrollHeight; }, 50); }",
    )
    refresh = Refresh(
        localized(lambda lang, current, wanted="": refresh_jobs(client, lang, current, "", wanted)),
        [job, c["filter"]],
        table_outputs,
    )
    runs_manage.build(client, job, c["message"], refresh)
    runs_lineage.build(client, job, c["open_parent"])
    return RunsPage(
        job=job,
        timer=timer,
        refresh=refresh,
        shortcuts={name: c[f"open_{name}"] for name in SHORTCUTS},
        continue_run=c["continue"],
        repaint=Refresh(localized(partial(repaint, client)), [job, gr.State({})], poll_outputs),
    )


# -- handlers: plain functions of (client, lang, inputs...) -----------------------------------------------


def default_run(jobs: list[Job]) -> str | None:
    """The run Runs shows when none is chosen: the running one, else the newest (``jobs`` newest first)."""
    running = next((j["id"] for j in jobs if j.get("state") == "running" and j.get("id")), None)
    return running or next((j["id"] for j in jobs if j.get("id")), None)


def refresh_jobs(client: TunesmithClient, lang: str, current: str | None, signature: str, wanted: str = ""):
    """Re-read the job list (only the runs the filter box ``wanted`` matches); only send what changed (a re-sent
    dropdown would close it under the mouse)."""
    try:
        jobs = client.list_jobs(**runs_manage.filter_params(wanted))
    except ApiError:
        return gr.skip(), gr.skip(), gr.skip(), signature
    jobs = sorted(jobs, key=lambda j: str(j.get("created_at") or ""), reverse=True)
    frame = jobs_frame(jobs, lang)
    choices = [(job_label(j, lang), j["id"]) for j in jobs if j.get("id")]
    table_key, choices_key = frame.to_json(), repr(choices)
    old_table, _, old_choices = signature.partition("\n")
    new_signature = f"{table_key}\n{choices_key}"
    ids = {c[1] for c in choices}
    table_update = frame if table_key != old_table else gr.skip()
    if choices_key != old_choices:
        dropdown_update = gr.Dropdown(choices=choices, value=current if current in ids else default_run(jobs))
        compare_update = gr.Dropdown(choices=choices)  # runs are never removed: the picked ones stay valid
    else:
        dropdown_update = compare_update = gr.skip()
    return table_update, dropdown_update, compare_update, new_signature


def poll(client: TunesmithClient, lang: str, job_id: str | None, state: dict[str, Any]):
    """Fetch the selected run's status, new metrics and log tail; skip work once it has finished."""
    skips = tuple(gr.skip() for _ in range(ACTION_BUTTONS))
    if not job_id:
        return empty_status(lang), "", "", {}, *action_updates(None)
    same = state.get("job") == job_id
    if same and state.get("final"):
        return gr.skip(), gr.skip(), gr.skip(), state, *skips
    rows: list[MetricRow] = list(state.get("rows") or []) if same else []
    try:
        job_info = client.get_job(job_id)
        if same and job_info.get("started_at") != state.get("started_at"):
            rows = []  # resumed (started again): the new attempt's numbers, not the old one's
        after = int(rows[-1]["step"]) - 1 if rows and isinstance(rows[-1].get("step"), int) else None
        rows = latest_samples_only(merge_metrics(rows, client.job_metrics(job_id, after=after)))
        log_text = client.job_logs(job_id, tail=LOG_TAIL)
    except ApiError as exc:
        esc = html.escape
        if exc.status_code == 404:
            return (
                f'<div class="ts-empty">{esc(t("runs.gone", lang, id=job_id))}</div>',
                "",
                "",
                {},
                *action_updates(None),
            )
        return (
            f'<div class="ts-error">{esc(t("runs.api_down", lang, error=exc))}</div>',
            gr.skip(),
            gr.skip(),
            state,
            *skips,
        )
    final = job_info.get("state") in TERMINAL_STATES
    new_state = {"job": job_id, "rows": rows, "final": final, "started_at": job_info.get("started_at")}
    return (
        status_html(job_info, rows, lang),
        metrics_html(rows, lang) if rows != state.get("rows") or not same else gr.skip(),  # unchanged: not resent
        log_text,
        new_state,
        *action_updates(job_info.get("state")),
    )


def repaint(client: TunesmithClient, lang: str, job_id: str | None, state: dict[str, Any]):
    """The selected run drawn again in ``lang`` (after a language switch)."""
    return poll(client, lang, job_id, state)


def tick(
    client: TunesmithClient, lang: str, job_id: str | None, state: dict[str, Any], signature: str, wanted: str = ""
):
    return (*refresh_jobs(client, lang, job_id, signature, wanted), *poll(client, lang, job_id, state))


def pick_row(evt: gr.SelectData):
    row = evt.row_value or []
    return row[0] if row else gr.skip()
