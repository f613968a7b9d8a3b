"""Compare runs (a section of the Runs tab): the loss curves of several runs overlaid, one colour per run, the
eval loss likewise, and a table of each run's method, learning rate, epochs, final and eval loss, speed and
runtime. Everything is re-read from the API (``GET /jobs/{id}``, ``GET /jobs/{id}/metrics``) when asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import gradio as gr
import pandas as pd

from app.client import ApiError, Job, MetricRow, TunesmithClient
from app.format import error_markdown, fmt_duration, fmt_float, state_text
from app.i18n import DEFAULT, localized, t
from app.pages.runs_charts import CHARTS_CSS, Chart, charts_html, points_of, series_of_runs, stage_compare_charts
from backend.config.schema import RunConfig

COMPARE_KEYS = ["run", "state", "method", "lr", "epochs", "final_loss", "eval_loss", "tokens_s", "runtime"]
MAX_RUNS = 12


@dataclass
class CompareSection:
    select: gr.Dropdown


def run_label(job: Job) -> str:
    """The legend entry of a run: its name, plus its id unless the name already carries it (``lora-<hex>``)."""
    job_id, name = str(job.get("id") or ""), str(job.get("name") or "")
    if not name:
        return job_id
    return name if job_id.removeprefix("job_") in name else f"{name} · {job_id}"


def _points(rows: list[MetricRow], key: str) -> list[tuple[int, float]]:
    return list(points_of(rows, key))


def compare_charts(runs: list[tuple[str, list[MetricRow]]], lang: str = DEFAULT) -> tuple[Chart, Chart]:
    """The train-loss and the eval-loss chart: one series per run, in the same colour in both charts."""
    return (Chart("compare_loss", t("chart.train_loss_title", lang), t("chart.train_loss", lang),
                  series_of_runs(runs, "loss")),
            Chart("compare_eval_loss", t("chart.eval_loss_title", lang), t("chart.eval_loss", lang),
                  series_of_runs(runs, "eval_loss")))


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def runtime_seconds(job: Job, now: datetime | None = None) -> float | None:
    """Started to finished (or to now while it runs); None before it started."""
    start = _timestamp(job.get("started_at"))
    if start is None:
        return None
    end = _timestamp(job.get("finished_at")) or (now or datetime.now(timezone.utc))
    return max((end - start).total_seconds(), 0.0)


def compare_columns(lang: str) -> list[str]:
    return [t(f"compare.col_{key}", lang) for key in COMPARE_KEYS]


def _learning_rate(config: dict[str, Any], lang: str) -> str:
    if isinstance(config.get("learning_rate"), (int, float)):
        return fmt_float(config["learning_rate"], 3)
    try:  # the schema knows the default for the method and stage
        return t("compare.lr_default", lang, lr=fmt_float(RunConfig.model_validate(config).effective_learning_rate, 3))
    except ValueError:
        return t("compare.default", lang)


def compare_row(job: Job, rows: list[MetricRow], now: datetime | None = None, lang: str = DEFAULT) -> list[str]:
    """One table row: run, state, method (and stage), peak lr, epochs trained, final train and eval loss, mean
    tokens/s over the logged steps, runtime."""
    config = job.get("config") or {}
    method = config.get("method")
    method_name = str(method.get("name", "")) if isinstance(method, dict) else str(method or "")
    if config.get("stage") not in (None, "sft"):
        method_name += f" ({config['stage']})"
    loss, eval_loss = _points(rows, "loss"), _points(rows, "eval_loss")
    epochs = next((r["epoch"] for r in reversed(rows) if isinstance(r.get("epoch"), (int, float))), None)
    speeds = [v for _, v in _points(rows, "tokens_per_s")]
    return [
        run_label(job),
        state_text(job.get("state"), lang),
        method_name,
        _learning_rate(config, lang),
        fmt_float(epochs, 3) if epochs is not None else t("compare.planned", lang,
                                                           epochs=fmt_float(config.get("num_epochs"), 3)),
        fmt_float(loss[-1][1]) if loss else "",
        fmt_float(eval_loss[-1][1]) if eval_loss else "",
        f"{sum(speeds) / len(speeds):.0f}" if speeds else "",
        fmt_duration(runtime_seconds(job, now), lang),
    ]


def compare_table(runs: list[tuple[Job, list[MetricRow]]], now: datetime | None = None,
                  lang: str = DEFAULT) -> pd.DataFrame:
    return pd.DataFrame([compare_row(job, rows, now, lang) for job, rows in runs], columns=compare_columns(lang))


def build(client: TunesmithClient) -> CompareSection:
    """Lay out the section (inside the Runs tab); the Runs list refresh keeps ``select``'s choices current."""
    gr.Markdown(t("compare.intro"))
    with gr.Row(equal_height=True):
        select = gr.Dropdown(label=t("compare.select"), choices=[], value=[], multiselect=True,
                             max_choices=MAX_RUNS, elem_id="runs-compare-select", scale=5)
        reload = gr.Button("↻", size="sm", scale=0, min_width=44, elem_id="runs-compare-refresh")
    with gr.Row(equal_height=False):
        loss_plot = gr.HTML("", css_template=CHARTS_CSS, elem_id="compare-loss-plot")
        eval_plot = gr.HTML("", css_template=CHARTS_CSS, elem_id="compare-eval-plot")
    table = gr.Dataframe(value=compare_table([]), interactive=False, show_label=False, elem_id="compare-table")
    note = gr.Markdown(elem_id="compare-note")

    def show(lang: str, job_ids: list[str] | None):
        job_ids = list(job_ids or [])
        if not job_ids:
            return "", "", compare_table([], lang=lang), ""
        runs: list[tuple[Job, list[MetricRow]]] = []
        failed = []
        for job_id in job_ids:
            try:
                runs.append((client.get_job(job_id), client.job_metrics(job_id)))
            except ApiError as exc:
                failed.append(f"`{job_id}`: {error_markdown(exc, lang)}")
        labelled = [(run_label(job), rows) for job, rows in runs]
        train, evals = compare_charts(labelled, lang)
        has_train, has_eval = (any(s.points for s in chart.series) for chart in (train, evals))
        notes = []
        if runs and not has_train:
            notes.append(t("compare.no_loss", lang))
        if has_train and not has_eval:
            notes.append(t("compare.no_eval", lang))
        if failed:
            notes.append(t("compare.unreadable", lang, runs="; ".join(failed)))
        return (charts_html([train, *stage_compare_charts(labelled, lang)], lang, "chart.compare_no_points")
                if has_train else "",  # the stages' rewards beside the train loss
                charts_html([evals], lang, "chart.compare_no_points") if has_eval else "",
                compare_table(runs, lang=lang), "\n\n".join(notes))

    for trigger in (select.change, reload.click):
        trigger(localized(show), inputs=[select], outputs=[loss_plot, eval_plot, table, note], show_progress="hidden")
    return CompareSection(select=select)
