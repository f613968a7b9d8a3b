"""Evaluate tab: score a finished run or a base model on a dataset (loss, perplexity, exact match, ROUGE-L, BLEU)
and read its greedy predictions next to the references.

Everything comes from the API (``POST /jobs/{id}/evaluate``, ``POST /evaluate``, the evaluation lists and their
``predictions.jsonl``); the UI keeps nothing. Evaluating the base model too shows what fine-tuning changed: the
loss is computed on the same tokens with the same mask for both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from app.client import ApiError, Job, Model, TunesmithClient
from app.downloads import scratch_dir
from app.format import error_markdown, fmt_duration, fmt_float, fmt_time
from app.i18n import DEFAULT, localized, request_lang, t
from app.pages import Refresh, targets
from app.pages.targets import parse_target, target_value  # noqa: F401  (the page's target encoding, for tests)

HISTORY_KEYS = ["when", "id", "dataset", "samples", "loss", "perplexity", "exact", "rouge", "bleu"]
PREDICTION_KEYS = ["prompt", "reference", "prediction", "rouge", "exact"]
PROMPT_CHARS = 600


def history_columns(lang: str = DEFAULT) -> list[str]:
    return [t(f"eval.col_{key}", lang) for key in HISTORY_KEYS]


def prediction_columns(lang: str = DEFAULT) -> list[str]:
    return [t(f"eval.col_{key}", lang) for key in PREDICTION_KEYS]


HISTORY_COLUMNS, PREDICTION_COLUMNS = history_columns(), prediction_columns()


@dataclass
class EvaluatePage:
    target: gr.Dropdown
    refresh: Refresh


# -- pure helpers (unit-tested) ----------------------------------------------------------------------------------
def target_choices(models: list[Model], jobs: list[Job], lang: str = DEFAULT) -> list[tuple[str, str]]:
    """Succeeded runs (newest first), then base models."""
    return targets.target_choices(models, jobs, lang, runs_first=True)


def fmt_share(value: Any) -> str:
    """A fraction in [0, 1] as a percentage with one decimal; '—' when not measured."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f}%"


def metrics_markdown(metrics: dict[str, Any], lang: str = DEFAULT) -> str:
    """The headline numbers of one evaluation, and what they were measured on."""
    loss, ppl = metrics.get("loss"), metrics.get("perplexity")
    lines = [
        t("eval.headline", lang, loss=fmt_float(loss) or "—", ppl=fmt_float(ppl) or "—",
          exact=fmt_share(metrics.get("exact_match")), rouge=fmt_share(metrics.get("rouge_l")),
          bleu=fmt_share(metrics.get("bleu"))),
        t("eval.measured_on", lang, samples=metrics.get("samples", 0), dataset=metrics.get("dataset", "?"),
          tokens=metrics.get("loss_tokens", 0), cutoff=metrics.get("cutoff_len", "?"),
          predictions=metrics.get("predictions", 0), max_new=metrics.get("max_new_tokens", "?"),
          duration=fmt_duration(metrics.get("seconds"), lang) or "?", device=metrics.get("device", "?"),
          dtype=metrics.get("dtype", "")),
    ]
    weights = t("eval.weights", lang, model=metrics.get("model", "?"))
    if metrics.get("adapter"):
        weights += t("eval.weights_adapter", lang, adapter=metrics["adapter"])
    lines.append(f"`{metrics.get('id', '?')}` · {fmt_time(metrics.get('created_at'))} · {weights}")
    skipped = metrics.get("skipped") or {}
    if skipped:
        lines.append(t("eval.skipped", lang, what=", ".join(f"{n} ({reason})" for reason, n in skipped.items())))
    if loss is None:
        lines.append(t("eval.no_loss", lang))
    return "  \n".join(lines)


def history_frame(evaluations: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    rows = [[fmt_time(e.get("created_at")), e.get("id", ""), e.get("dataset", ""), e.get("samples", ""),
             fmt_float(e.get("loss")), fmt_float(e.get("perplexity")), fmt_share(e.get("exact_match")),
             fmt_share(e.get("rouge_l")), fmt_share(e.get("bleu"))] for e in evaluations]
    return pd.DataFrame(rows, columns=history_columns(lang))


def history_choices(evaluations: list[dict[str, Any]], lang: str = DEFAULT) -> list[tuple[str, str]]:
    return [(t("eval.history_choice", lang, when=fmt_time(e.get("created_at")), dataset=e.get("dataset", "?"),
               loss=fmt_float(e.get("loss")) or "—"), str(e["id"])) for e in evaluations if e.get("id")]


def prompt_text(messages: list[dict[str, Any]], limit: int = PROMPT_CHARS) -> str:
    """A prompt as ``role: content`` lines; the start of a long prompt gives way to its end (the newest turn)."""
    text = "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in messages)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def predictions_frame(rows: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    table = [[prompt_text(r.get("prompt") or []), r.get("reference", ""), r.get("prediction", ""),
              fmt_share(r.get("rouge_l")), "✓" if r.get("exact_match") else ""] for r in rows]
    return pd.DataFrame(table, columns=prediction_columns(lang))


def read_predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the page ----------------------------------------------------------------------------------------------------
def _layout() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(t("eval.intro"))
    with gr.Row(equal_height=True):
        c["target"] = gr.Dropdown(label=t("eval.target"), choices=[], value=None, scale=4, elem_id="eval-target")
        c["dataset"] = gr.Dropdown(label=t("eval.dataset"), choices=[], value=None, scale=3, elem_id="eval-dataset")
        c["refresh"] = gr.Button(t("eval.refresh"), size="sm", scale=0, min_width=100, elem_id="eval-refresh")
    with gr.Row(equal_height=True):
        c["samples"] = gr.Slider(1, 1000, value=50, step=1, label=t("eval.samples"), info=t("eval.samples_help"),
                                 elem_id="eval-samples")
        c["new_tokens"] = gr.Slider(1, 2048, value=128, step=1, label=t("eval.max_new"),
                                    elem_id="eval-max-new-tokens")
        c["start"] = gr.Button(t("eval.start"), variant="primary", scale=0, min_width=140, elem_id="eval-start")
    c["metrics"] = gr.Markdown(t("eval.pick"), elem_id="eval-metrics")
    c["download"] = gr.DownloadButton(t("eval.download"), visible=False, elem_id="eval-download")
    # Prompts are long: give the reference and the prediction the room (they are what one reads).
    c["table"] = gr.Dataframe(value=predictions_frame([]), interactive=False, wrap=True, label=t("eval.predictions"),
                              max_height=600, column_widths=["28%", "30%", "30%", "7%", "5%"],
                              elem_id="eval-predictions")
    gr.Markdown(t("eval.earlier"))
    c["history"] = gr.Dataframe(value=history_frame([]), interactive=False, show_label=False,
                                elem_id="eval-history")
    c["pick"] = gr.Dropdown(label=t("eval.show_earlier"), choices=[], value=None, elem_id="eval-pick")
    return c


def build(client: TunesmithClient) -> EvaluatePage:
    c = _layout()
    shown = [c["metrics"], c["download"], c["table"]]
    c["target"].change(localized(partial(on_target, client)), inputs=[c["target"]],
                       outputs=[*shown, c["history"], c["pick"]], show_progress="hidden")
    c["start"].click(run_handler(client), inputs=[c["target"], c["dataset"], c["samples"], c["new_tokens"]],
                     outputs=[*shown, c["history"], c["pick"]])
    c["pick"].input(localized(partial(on_pick, client)), inputs=[c["target"], c["pick"]], outputs=shown)
    refresh = Refresh(localized(partial(refresh_lists, client)), [c["target"], c["dataset"]],
                      [c["target"], c["dataset"]])
    refresh.on(c["refresh"].click)
    return EvaluatePage(target=c["target"], refresh=refresh)


# -- handlers: plain functions of (client, lang, inputs...) -----------------------------------------------


def list_for(client: TunesmithClient, picked: tuple[str, str]) -> list[dict[str, Any]]:
    return client.list_evaluations(**targets.api_reference(picked))


def refresh_lists(client: TunesmithClient, lang: str, current_target: str | None, current_dataset: str | None):
    try:
        choices = target_choices(client.list_models(), client.list_jobs(), lang)
        datasets = [(t("eval.dataset_choice", lang, name=d["name"], rows=d.get("num_rows", "?")), d["id"])
                    for d in client.list_datasets()]
    except ApiError as exc:
        gr.Warning(t("eval.list_failed", lang, error=exc))
        return gr.skip(), gr.skip()
    values = {value for _, value in choices}
    dataset_ids = {value for _, value in datasets}
    return (gr.Dropdown(choices=choices, value=current_target if current_target in values else None),
            gr.Dropdown(choices=datasets, value=current_dataset if current_dataset in dataset_ids else None))


def show(client: TunesmithClient, lang: str, picked: tuple[str, str], evaluation: dict[str, Any]):
    """metrics, download button, predictions table for one evaluation."""
    kind, ident = picked
    dest = scratch_dir() / f"{evaluation['id']}-predictions.jsonl"
    path = client.download_predictions(evaluation["id"], dest, job_id=ident if kind == "job" else None)
    rows = read_predictions(path)
    return (metrics_markdown(evaluation, lang),
            gr.DownloadButton(value=str(path), label=t("eval.download_rows", lang, count=len(rows)), visible=True),
            predictions_frame(rows, lang))


def on_target(client: TunesmithClient, lang: str, value: str | None):
    empty = (gr.DownloadButton(visible=False, value=None), predictions_frame([], lang))
    picked = parse_target(value)
    if picked is None:
        return t("eval.pick", lang), *empty, history_frame([], lang), gr.Dropdown(choices=[], value=None)
    try:
        found = list_for(client, picked)
    except ApiError as exc:
        return error_markdown(exc, lang), *empty, history_frame([], lang), gr.Dropdown(choices=[], value=None)
    note = t("eval.earlier_count", lang, count=len(found)) if found else t("eval.not_yet", lang)
    return note, *empty, history_frame(found, lang), gr.Dropdown(choices=history_choices(found, lang), value=None)


def run_handler(client: TunesmithClient):
    """The Evaluate button's callback: Gradio passes the request (for the language) and a progress tracker."""
    def run(request: gr.Request, value: str | None, dataset_id: str | None, n: float, max_new: float,
            progress: gr.Progress = gr.Progress()):
        lang = request_lang(request)
        picked = parse_target(value)
        if picked is None or not dataset_id:
            return t("eval.pick_both", lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        # The API answers once it is done and reports no fraction: a phase line, no made-up percentage.
        progress(None, desc=t("eval.running", lang))
        try:
            result = client.evaluate(dataset_id, max_samples=int(n), max_new_tokens=int(max_new),
                                     **targets.api_reference(picked))
            shown = show(client, lang, picked, result)
            found = list_for(client, picked)
        except (ApiError, OSError, ValueError) as exc:
            return (t("eval.failed", lang) + "\n\n" + error_markdown(exc, lang), gr.DownloadButton(visible=False),
                    gr.skip(), gr.skip(), gr.skip())
        return (*shown, history_frame(found, lang), gr.Dropdown(choices=history_choices(found, lang),
                                                                value=result["id"]))
    return run


def on_pick(client: TunesmithClient, lang: str, value: str | None, eval_id: str | None):
    picked = parse_target(value)
    if picked is None or not eval_id:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        found = {e["id"]: e for e in list_for(client, picked)}
        if eval_id not in found:
            return t("eval.gone", lang, id=eval_id), gr.DownloadButton(visible=False), predictions_frame([], lang)
        return show(client, lang, picked, found[eval_id])
    except (ApiError, OSError, ValueError) as exc:
        return error_markdown(exc, lang), gr.DownloadButton(visible=False), predictions_frame([], lang)
