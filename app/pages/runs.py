"""Runs tab: every job the API knows, and a live view (loss curve, status, log tail) of the selected one.

Everything shown is re-read from the API by a timer; the only thing kept in the browser session is a
cache of metric rows already fetched, so each tick asks only for ``metrics?after=<last step>``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from app.client import TERMINAL_STATES, ApiError, Job, MetricRow, TunesmithClient
from app.format import error_markdown, fmt_duration, fmt_float, fmt_time, state_label, state_text
from app.i18n import DEFAULT, localized, t
from app.pages import Refresh, compare

TABLE_COLUMNS = ["id", "name", "state", "progress", "step", "loss", "method", "model", "created"]
PLOT_COLUMNS = ["step", "loss", "series"]
SERIES_TRAIN, SERIES_EVAL = "train loss", "eval loss"
POLL_SECONDS = 2.0
LOG_TAIL = 200

STATUS_CSS = """
.ts-status { display: flex; flex-direction: column; gap: 6px; }
.ts-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 10px; font-size: 15px; }
.ts-head code { font-size: 12px; }
.ts-badge { padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: var(--neutral-200);
            color: var(--neutral-800); }
.ts-badge.running { background: #dbeafe; color: #1e3a8a; }
.ts-badge.succeeded { background: #dcfce7; color: #14532d; }
.ts-badge.failed { background: #fee2e2; color: #7f1d1d; }
.ts-badge.cancelled { background: #e5e7eb; color: #374151; }
.ts-bar { height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden; }
.ts-bar > div { height: 100%; background: var(--color-accent); transition: width .5s; }
.ts-facts { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; color: var(--body-text-color-subdued); }
.ts-facts b { color: var(--body-text-color); font-weight: 600; }
.ts-error { border-left: 3px solid #dc2626; padding: 6px 10px; background: #fef2f2; color: #7f1d1d; font-size: 13px;
            white-space: pre-wrap; }
.ts-hint { border-left: 3px solid #2563eb; padding: 6px 10px; background: #eff6ff; color: #1e3a8a; font-size: 13px; }
.ts-empty { color: var(--body-text-color-subdued); }
"""


@dataclass
class RunsPage:
    job: gr.Dropdown
    timer: gr.Timer
    refresh: Refresh


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


def jobs_frame(jobs: list[Job]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        config = job.get("config") or {}
        progress = job.get("progress")
        total = job.get("total_steps")
        rows.append(
            [
                job.get("id", ""),
                job.get("name") or "",
                state_label(job.get("state")),
                f"{100 * progress:.0f}%" if isinstance(progress, (int, float)) else "",
                f"{job.get('step') or 0}/{total}" if total else str(job.get("step") or ""),
                fmt_float(job.get("latest_loss")),
                _method_name(config),
                str(config.get("base_model", "")),
                fmt_time(job.get("created_at")),
            ]
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def loss_frame(rows: list[MetricRow]) -> pd.DataFrame | None:
    """Long-format frame for gr.LinePlot, one line per series (train loss, eval loss); None without data.

    How gr.LinePlot (Gradio 6) behaves, and why this looks the way it does: a plot is laid out (axis
    types, label widths, colour legend) only when it goes from no value to a value, or when a prop
    changes (and then it draws the previous value). Later values only swap the data. So an empty plot is
    ``None`` (never an empty frame), the Runs tab clears the plot before showing another run, every
    frame has numeric columns, and a series with no points yet gets blank (NaN) points so it is in the
    legend from the start and is drawn once its data arrives.
    """
    points = []
    for row in rows:
        step = row.get("step")
        if not isinstance(step, (int, float)):
            continue
        if isinstance(row.get("loss"), (int, float)):
            points.append((step, float(row["loss"]), SERIES_TRAIN))
        if isinstance(row.get("eval_loss"), (int, float)):
            points.append((step, float(row["eval_loss"]), SERIES_EVAL))
    if not points:
        return None
    first = int(min(p[0] for p in points))
    present = {series for _, _, series in points}
    for series in (SERIES_TRAIN, SERIES_EVAL):
        if series not in present:
            points.append((first, float("nan"), series))
    frame = pd.DataFrame(points, columns=PLOT_COLUMNS).astype({"step": "int64", "loss": "float64", "series": "string"})
    order = frame["series"].map({SERIES_TRAIN: 0, SERIES_EVAL: 1})
    return frame.assign(_order=order).sort_values(["_order", "step"], kind="stable").drop(columns="_order").reset_index(
        drop=True
    )


def merge_metrics(cached: list[MetricRow], new: list[MetricRow]) -> list[MetricRow]:
    """Add newly fetched rows to the cache; a row is identified by its step and whether it is an eval row."""

    def key(row: MetricRow) -> tuple[Any, bool]:
        return row.get("step"), "eval_loss" in row and row.get("loss") is None

    merged = {key(r): r for r in cached}
    for row in new:
        merged[key(row)] = row
    return sorted(merged.values(), key=lambda r: (r.get("step") or 0, key(r)[1]))


def stop_message(client: TunesmithClient, job_id: str | None) -> str:
    """Ask the API to stop the run at its next step and save it; the message says what happens next."""
    if not job_id:
        return "⚠ Select a running run to stop."
    try:
        client.stop_job(job_id)
    except ApiError as exc:
        return "Stop refused.\n\n" + error_markdown(exc)
    return (f"Stop requested for `{job_id}`: training ends after the current step and the adapter/model trained so "
            "far is saved; the run then shows as succeeded.")


def engine_summary(engine: dict | None) -> str:
    """One line of what the engine really runs with (its engine.json), e.g. 'bf16 · sdpa · checkpointing off'."""
    if not engine:
        return ""
    parts = [str(engine.get("precision") or "")]
    if engine.get("attn_implementation"):
        parts.append(f"attention {engine['attn_implementation']}")
    if "gradient_checkpointing" in engine:
        parts.append(f"checkpointing {'on' if engine['gradient_checkpointing'] else 'off'}")
    if engine.get("liger_kernel"):
        parts.append("Liger kernels")
    if engine.get("batch_tokens"):
        parts.append(f"{engine['batch_tokens']} tokens per micro-batch")
    return " · ".join(p for p in parts if p)


def status_html(job: Job, rows: list[MetricRow]) -> str:
    state = str(job.get("state", ""))
    esc = html.escape
    progress = job.get("progress") or 0.0
    if state == "succeeded":
        progress = 1.0
    total = job.get("total_steps")
    step = job.get("step") or 0
    last = rows[-1] if rows else {}

    def latest(key: str) -> Any:
        return next((r.get(key) for r in reversed(rows) if r.get(key) is not None), None)

    facts = [("step", f"{step}/{total}" if total else str(step))]
    for label, value in (
        ("loss", fmt_float(job.get("latest_loss"))),
        ("eval loss", fmt_float(latest("eval_loss"))),
        ("reward margin", fmt_float(latest("rewards/margins"), 3)),  # stages dpo/kto
        ("reward accuracy", fmt_float(latest("rewards/accuracies"), 3)),
        ("lr", fmt_float(last.get("lr"), 3)),
        ("epoch", fmt_float(last.get("epoch"), 3)),
        ("tokens/s", fmt_float(last.get("tokens_per_s"), 4)),
        ("ETA", fmt_duration(last.get("eta_s")) if state == "running" else ""),
        ("started", fmt_time(job.get("started_at"))),
        ("finished", fmt_time(job.get("finished_at"))),
        ("output", str(job.get("output") or "")),
        ("engine", engine_summary(job.get("engine"))),
        ("queued", str(job.get("waiting_for") or "") if state == "queued" else ""),
        ("stopped early", f"at step {job['stopped_early_at_step']}" if job.get("stopped_early_at_step") else ""),
        ("stop", "requested, saving at the next step" if job.get("stop_requested") else ""),
    ):
        if value:
            facts.append((label, value))
    parts = [
        '<div class="ts-status">',
        '<div class="ts-head">',
        f"<b>{esc(str(job.get('name') or 'run'))}</b><code>{esc(str(job.get('id')))}</code>",
        f'<span class="ts-badge {esc(state)}">{esc(state_label(state))}</span>',
        f"<span>{100 * float(progress):.0f}%</span>",
        "</div>",
        f'<div class="ts-bar"><div style="width:{max(0.0, min(1.0, float(progress))) * 100:.1f}%"></div></div>',
        '<div class="ts-facts">' + "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in facts) + "</div>",
    ]
    if job.get("error"):
        parts.append(f'<div class="ts-error"><b>Error:</b> {esc(str(job["error"]))}</div>')
    if job.get("hint"):
        parts.append(f'<div class="ts-hint"><b>Hint:</b> {esc(str(job["hint"]))}</div>')
    parts.append("</div>")
    return "".join(parts)


EMPTY_STATUS = '<div class="ts-empty">Select a run to follow it live.</div>'


def build(client: TunesmithClient) -> RunsPage:
    gr.Markdown(
        "Every run the API knows about, newest first. Select one to watch its loss curve and log live; "
        "closing the browser loses nothing — runs live on the server."
    )
    with gr.Row(equal_height=True):
        job = gr.Dropdown(label="Run", choices=[], value=None, elem_id="runs-job", scale=5)
        with gr.Column(scale=0, min_width=150):
            refresh_btn = gr.Button("↻ Refresh list", size="sm", elem_id="runs-refresh")
            stop = gr.Button("⏹ Stop & save", size="sm", elem_id="runs-stop")
            cancel = gr.Button("■ Cancel run", variant="stop", size="sm", elem_id="runs-cancel")
            resume = gr.Button("▶ Resume run", size="sm", elem_id="runs-resume")
    table = gr.Dataframe(
        value=jobs_frame([]),
        headers=TABLE_COLUMNS,
        interactive=False,
        max_height=260,
        elem_id="runs-table",
        show_label=False,
    )
    status = gr.HTML(EMPTY_STATUS, css_template=STATUS_CSS, js_on_load=None, elem_id="runs-status")
    with gr.Row(equal_height=False):
        plot = gr.LinePlot(
            value=None,
            x="step",
            y="loss",
            color="series",
            color_map={SERIES_TRAIN: "#2563eb", SERIES_EVAL: "#f97316"},
            x_title="step",
            y_title="loss",
            title="Loss",
            height=320,
            elem_id="loss-plot",
            scale=3,
        )
        logs = gr.Textbox(
            label=f"Log (last {LOG_TAIL} lines)",
            lines=16,
            max_lines=16,
            autoscroll=True,
            interactive=False,
            elem_id="runs-logs",
            scale=2,
        )
    cancel_status = gr.Markdown(elem_id="runs-message")
    with gr.Accordion("Compare runs", open=False, elem_id="runs-compare"):
        compared = compare.build(client)
    timer = gr.Timer(POLL_SECONDS, active=False)  # app.main turns it on while Runs is shown
    # Session cache: {"job": id, "rows": [...], "final": bool}. Only a view cache; the API is the truth.
    cache = gr.State({})
    table_sig = gr.State("")

    def refresh_jobs(current: str | None, signature: str):
        """Re-read the job list; only send what changed (a re-sent dropdown would close it under the mouse)."""
        try:
            jobs = client.list_jobs()
        except ApiError:
            return gr.skip(), gr.skip(), gr.skip(), signature
        jobs = sorted(jobs, key=lambda j: str(j.get("created_at") or ""), reverse=True)
        frame = jobs_frame(jobs)
        choices = [(job_label(j), j["id"]) for j in jobs if j.get("id")]
        table_key, choices_key = frame.to_json(), repr(choices)
        old_table, _, old_choices = signature.partition("\n")
        new_signature = f"{table_key}\n{choices_key}"
        ids = {c[1] for c in choices}
        table_update = frame if table_key != old_table else gr.skip()
        if choices_key != old_choices:
            dropdown_update = gr.Dropdown(choices=choices, value=current if current in ids else None)
            compare_update = gr.Dropdown(choices=choices)  # runs are never removed: the picked ones stay valid
        else:
            dropdown_update = compare_update = gr.skip()
        return table_update, dropdown_update, compare_update, new_signature

    def poll(job_id: str | None, state: dict[str, Any]):
        """Fetch the selected run's status, new metrics and log tail; skip work once it has finished."""
        if not job_id:
            return EMPTY_STATUS, loss_frame([]), "", {}
        same = state.get("job") == job_id
        if same and state.get("final"):
            return gr.skip(), gr.skip(), gr.skip(), state
        rows: list[MetricRow] = list(state.get("rows") or []) if same else []
        try:
            job_info = client.get_job(job_id)
            after = int(rows[-1]["step"]) - 1 if rows and isinstance(rows[-1].get("step"), int) else None
            rows = merge_metrics(rows, client.job_metrics(job_id, after=after))
            log_text = client.job_logs(job_id, tail=LOG_TAIL)
        except ApiError as exc:
            if exc.status_code == 404:
                return f'<div class="ts-empty">Run <code>{html.escape(job_id)}</code> no longer exists.</div>', loss_frame([]), "", {}
            return f'<div class="ts-error">Could not reach the API: {html.escape(str(exc))}</div>', gr.skip(), gr.skip(), state
        final = job_info.get("state") in TERMINAL_STATES
        new_state = {"job": job_id, "rows": rows, "final": final}
        return status_html(job_info, rows), loss_frame(rows), log_text, new_state

    def tick(job_id: str | None, state: dict[str, Any], signature: str):
        return (*refresh_jobs(job_id, signature), *poll(job_id, state))

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[0] if row else gr.skip()

    def do_cancel(job_id: str | None):
        if not job_id:
            return "⚠ Select a run to cancel."
        try:
            job_info = client.cancel_job(job_id)
        except ApiError as exc:
            if exc.status_code == 409:
                return f"ℹ Run `{job_id}` has already finished: {exc.message}"
            return "Cancel failed.\n\n" + error_markdown(exc)
        return f"Cancel requested for `{job_id}` (state: {job_info.get('state')})."

    def do_stop(job_id: str | None):
        return stop_message(client, job_id)

    def do_resume(job_id: str | None):
        if not job_id:
            return "⚠ Select a failed or cancelled run to resume."
        try:
            job_info = client.resume_job(job_id)
        except ApiError as exc:
            return "Resume refused.\n\n" + error_markdown(exc)
        return (f"Run `{job_id}` queued again (state: {job_info.get('state')}); it continues from its newest "
                "checkpoint, or starts over when it has none.")

    # Keep the newest log lines in view (Textbox autoscroll does not cover the first fill).
    logs.change(
        None,
        js="() => { setTimeout(() => { const t = document.querySelector('#runs-logs textarea');"
        " if (t) t.scrollTop = t.scrollHeight; }, 50); }",
    )

    poll_outputs = [status, plot, logs, cache]
    table_outputs = [table, job, compared.select, table_sig]
    timer.tick(
        tick,
        inputs=[job, cache, table_sig],
        outputs=[*table_outputs, *poll_outputs],
        show_progress="hidden",
        concurrency_limit=None,
        trigger_mode="always_last",
    )
    # Another run: clear the plot first so it is laid out afresh for that run's values (see loss_frame).
    job.change(lambda: None, outputs=[plot], show_progress="hidden").then(
        poll, inputs=[job, cache], outputs=poll_outputs, show_progress="hidden"
    )
    table.select(pick_row, outputs=[job])
    refresh_btn.click(refresh_jobs, inputs=[job, gr.State("")], outputs=table_outputs)
    cancel.click(do_cancel, inputs=[job], outputs=[cancel_status]).then(
        poll, inputs=[job, gr.State({})], outputs=poll_outputs, show_progress="hidden"
    )
    stop.click(do_stop, inputs=[job], outputs=[cancel_status]).then(
        poll, inputs=[job, gr.State({})], outputs=poll_outputs, show_progress="hidden"
    )
    resume.click(do_resume, inputs=[job], outputs=[cancel_status]).then(
        poll, inputs=[job, gr.State({})], outputs=poll_outputs, show_progress="hidden"
    )
    refresh = Refresh(lambda current: refresh_jobs(current, ""), [job], table_outputs)
    return RunsPage(job=job, timer=timer, refresh=refresh)
