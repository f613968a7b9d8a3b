"""Evaluate tab: score a finished run or a base model on a dataset (loss, perplexity, exact match, ROUGE-L, BLEU;
a reward model: pairwise accuracy and margin) or on the rows the run held out, side by side with its base model,
and read the predictions next to the references.

Everything comes from the API (``POST /jobs/{id}/evaluate``, ``POST /evaluate``, the evaluation lists and their
``predictions.jsonl``); the UI keeps nothing. What it writes is :mod:`app.pages.evaluate_format`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, Job, Model, TunesmithClient
from app.downloads import scratch_dir
from app.format import error_markdown
from app.i18n import DEFAULT, localized, request_lang, t
from app.pages import Refresh, targets
from app.pages.evaluate_format import (  # noqa: F401  (re-exported: the page's helpers, for tests)
    HELD_OUT,
    column_widths,
    dataset_choices,
    fmt_share,
    has_held_out,
    history_choices,
    history_columns,
    history_frame,
    metrics_markdown,
    prediction_columns,
    predictions_frame,
    prompt_text,
    read_predictions,
)
from app.pages.targets import parse_target, target_value  # noqa: F401  (the page's target encoding, for tests)

HISTORY_COLUMNS, PREDICTION_COLUMNS = history_columns(), prediction_columns()
POLL_S = 1.0  # how often the progress bar asks the API how far the evaluation is


@dataclass
class EvaluatePage:
    target: gr.Dropdown
    refresh: Refresh


def target_choices(models: list[Model], jobs: list[Job], lang: str = DEFAULT) -> list[tuple[str, str]]:
    """Succeeded runs (newest first), then base models."""
    return targets.target_choices(models, jobs, lang, runs_first=True)


# -- the page ----------------------------------------------------------------------------------------------------
def _layout() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(t("eval.intro"))
    with gr.Row(equal_height=True):
        c["target"] = gr.Dropdown(label=t("eval.target"), choices=[], value=None, scale=4, elem_id="eval-target")
        c["dataset"] = gr.Dropdown(label=t("eval.dataset"), choices=[], value=None, scale=3, elem_id="eval-dataset")
        c["refresh"] = gr.Button(t("eval.refresh"), size="sm", scale=0, min_width=100, elem_id="eval-refresh")
    with gr.Row(equal_height=True):
        # min_width: at phone width the sliders stack (side by side their labels broke one character a line)
        c["samples"] = gr.Slider(1, 1000, value=50, step=1, label=t("eval.samples"), info=t("eval.samples_help"),
                                 min_width=280, elem_id="eval-samples")
        c["new_tokens"] = gr.Slider(1, 2048, value=128, step=1, label=t("eval.max_new"), min_width=280,
                                    elem_id="eval-max-new-tokens")
        c["with_base"] = gr.Checkbox(value=True, label=t("eval.with_base"), info=t("eval.with_base_help"),
                                     visible=False, elem_id="eval-with-base")
        c["start"] = gr.Button(t("eval.start"), variant="primary", scale=0, min_width=140, interactive=False,
                               elem_id="eval-start")  # usable once a target and a dataset are picked
    c["metrics"] = gr.Markdown(t("eval.pick"), elem_id="eval-metrics")
    c["download"] = gr.DownloadButton(t("eval.download"), visible=False, elem_id="eval-download")
    # Prompts are long: the replies get the room (they are what one reads); columns wrap, none runs off-screen.
    c["table"] = gr.Dataframe(value=predictions_frame([]), interactive=False, wrap=True, label=t("eval.predictions"),
                              max_height=600, column_widths=column_widths([]), elem_id="eval-predictions")
    gr.Markdown(t("eval.earlier"))
    c["history"] = gr.Dataframe(value=history_frame([]), interactive=False, show_label=False,
                                elem_id="eval-history")
    c["pick"] = gr.Dropdown(label=t("eval.show_earlier"), choices=[], value=None, elem_id="eval-pick")
    return c


def build(client: TunesmithClient) -> EvaluatePage:
    c = _layout()
    shown = [c["metrics"], c["download"], c["table"]]
    c["target"].change(localized(partial(on_target, client)), inputs=[c["target"], c["dataset"]],
                       outputs=[*shown, c["history"], c["pick"], c["dataset"], c["with_base"]], show_progress="hidden")
    c["start"].click(run_handler(client), inputs=[c["target"], c["dataset"], c["samples"], c["new_tokens"],
                                                  c["with_base"]],
                     outputs=[*shown, c["history"], c["pick"]])
    for picker in (c["target"], c["dataset"]):
        picker.change(start_ready, inputs=[c["target"], c["dataset"]], outputs=[c["start"]], show_progress="hidden")
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
        jobs = client.list_jobs()
        choices = target_choices(client.list_models(), jobs, lang)
        picked = parse_target(current_target)
        job = next((j for j in jobs if picked and picked[0] == "job" and j.get("id") == picked[1]), None)
        datasets = dataset_choices(client.list_datasets(), job, lang)
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
            predictions_table(rows, lang))


def predictions_table(rows: list[dict[str, Any]], lang: str) -> gr.Dataframe:
    """The predictions with the columns (and widths) they need: one model, base | run, or a reward model's pairs."""
    return gr.Dataframe(value=predictions_frame(rows, lang), column_widths=column_widths(rows))


def dataset_update(client: TunesmithClient, lang: str, picked: tuple[str, str], current: str | None) -> gr.Dropdown:
    """The datasets the target can be evaluated on; a run that held rows out starts on its held-out split."""
    job = client.get_job(picked[1]) if picked[0] == "job" else None
    choices = dataset_choices(client.list_datasets(), job, lang)
    values = [value for _, value in choices]
    value = HELD_OUT if has_held_out(job) else current if current in values and current != HELD_OUT else None
    return gr.Dropdown(choices=choices, value=value)


def start_ready(value: str | None, dataset_id: str | None) -> dict[str, Any]:
    """Evaluate is pressable only with a run or base model and a dataset (it said "pick both" when pressed)."""
    return gr.update(interactive=parse_target(value) is not None and bool(dataset_id))


def on_target(client: TunesmithClient, lang: str, value: str | None, current_dataset: str | None = None):
    """metrics note, download, table, history, earlier-evaluation picker, dataset choices, base checkbox."""
    empty = (gr.DownloadButton(visible=False, value=None), predictions_table([], lang))
    picked = parse_target(value)
    if picked is None:
        return (t("eval.pick", lang), *empty, history_frame([], lang), gr.Dropdown(choices=[], value=None),
                gr.skip(), gr.Checkbox(visible=False))
    with_base = gr.Checkbox(visible=picked[0] == "job")
    try:
        found = list_for(client, picked)
        datasets = dataset_update(client, lang, picked, current_dataset)
    except ApiError as exc:
        return (error_markdown(exc, lang), *empty, history_frame([], lang), gr.Dropdown(choices=[], value=None),
                gr.skip(), with_base)
    note = t("eval.earlier_count", lang, count=len(found)) if found else t("eval.not_yet", lang)
    return (note, *empty, history_frame(found, lang), gr.Dropdown(choices=history_choices(found, lang), value=None),
            datasets, with_base)


def progress_desc(state: dict[str, Any], lang: str = DEFAULT, kind: str = "job") -> tuple[float | None, str]:
    """``(fraction, line)`` for the progress bar from the API's progress of a running evaluation."""
    phase = state.get("phase")
    if not state.get("running") or not phase:
        return None, t("eval.progress_loading", lang)
    side, step = phase.split(":", 1) if ":" in phase else ("run", phase)
    side = "model" if kind == "model" else side  # a base model evaluated alone is no run
    return state.get("fraction"), t("eval.progress", lang, side=t(f"eval.side_{side}", lang),
                                    step=t(f"eval.step_{step}", lang), done=state.get("done", 0),
                                    total=state.get("total", 0))


def wait_with_progress(client: TunesmithClient, picked: tuple[str, str], progress: gr.Progress, lang: str,
                       call) -> dict[str, Any]:
    """Run the (blocking) evaluate call while the bar follows the engine: phase, rows done of total."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call)
        while True:
            try:
                return future.result(timeout=POLL_S)
            except TimeoutError:
                pass
            try:
                state = client.evaluation_progress(**targets.api_reference(picked))
                fraction, line = progress_desc(state, lang, picked[0])
            except ApiError:
                continue  # the bar stays where it was; the evaluation itself reports its own errors
            progress(fraction, desc=line)


def run_handler(client: TunesmithClient):
    """The Evaluate button's callback: Gradio passes the request (for the language) and a progress tracker."""
    def run(request: gr.Request, value: str | None, dataset_id: str | None, n: float, max_new: float,
            with_base: bool = False, progress: gr.Progress = gr.Progress()):
        lang = request_lang(request)
        picked = parse_target(value)
        if picked is None or not dataset_id:
            return t("eval.pick_both", lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        with_base = bool(with_base) and picked[0] == "job"
        progress(None, desc=t("eval.running_base" if with_base else "eval.running", lang))
        try:
            result = wait_with_progress(client, picked, progress, lang, partial(
                client.evaluate, None if dataset_id == HELD_OUT else dataset_id, max_samples=int(n),
                max_new_tokens=int(max_new), with_base=with_base, **targets.api_reference(picked)))
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
            return t("eval.gone", lang, id=eval_id), gr.DownloadButton(visible=False), predictions_table([], lang)
        return show(client, lang, picked, found[eval_id])
    except (ApiError, OSError, ValueError) as exc:
        return error_markdown(exc, lang), gr.DownloadButton(visible=False), predictions_table([], lang)
