"""What the Evaluate tab writes: the headline and the run | base comparison of one evaluation, whether its rows
were trained on, the predictions table (model | reference; base | run | reference side by side; a reward model's
pairs), the history table and the dataset choices a target offers. Pure functions of API dicts (unit-tested)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from app.client import Job
from app.format import fmt_duration, fmt_float, fmt_time, role_label
from app.i18n import DEFAULT, t

HISTORY_KEYS = ["when", "id", "dataset", "samples", "loss", "perplexity", "exact", "rouge", "bleu"]
PREDICTION_KEYS = ["prompt", "reference", "prediction", "rouge", "exact"]
SIDE_KEYS = ["prompt", "base_prediction", "run_prediction", "reference", "rouge_base_run", "trained"]
PAIR_KEYS = ["prompt", "chosen", "rejected", "margin_base_run", "ranked", "trained"]
WIDTHS = {"prompt": 18, "reference": 22, "prediction": 34, "base_prediction": 21, "run_prediction": 21, "rouge": 8,
          "exact": 6, "rouge_base_run": 10, "trained": 8, "chosen": 24, "rejected": 24, "margin_base_run": 11,
          "ranked": 9}
PROMPT_CHARS = 600
TABLE_SHARE = 94  # percent of the frame the columns take (see column_widths)
HELD_OUT = "@held_out"  # the dataset dropdown's value for "the run's held-out split" (dataset ids never start with @)
COMPARED = [("loss", "loss", fmt_float), ("perplexity", "perplexity", fmt_float), ("exact", "exact_match", None),
            ("rouge", "rouge_l", None), ("bleu", "bleu", None)]
PAIR_COMPARED = [("pair_accuracy", "pairwise_accuracy", None), ("pair_margin", "mean_margin", fmt_float)]


def fmt_share(value: Any) -> str:
    """A fraction in [0, 1] as a percentage with one decimal; '—' when not measured."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f}%"


def _fmt(value: Any, fmt) -> str:
    return (fmt(value) or "—") if fmt is not None else fmt_share(value)


def _signed(value: Any, fmt) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    text = fmt(abs(value)) if fmt is not None else f"{100 * abs(value):.1f} pt"
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def is_pairwise(metrics: dict[str, Any]) -> bool:
    """A reward model's evaluation (pairs scored, nothing generated)."""
    return metrics.get("pairwise_accuracy") is not None or "pairs" in metrics


# -- one evaluation ------------------------------------------------------------------------------------------------
def comparison_table(metrics: dict[str, Any], lang: str = DEFAULT) -> str:
    """A markdown table metric | base | run | Δ (run − base), for an evaluation made with the base model."""
    base, delta = metrics.get("base") or {}, metrics.get("delta") or {}
    rows = PAIR_COMPARED if is_pairwise(metrics) else COMPARED
    lines = [f"| {t('eval.cmp_metric', lang)} | {t('eval.cmp_base', lang)} | {t('eval.cmp_run', lang)} | Δ |",
             "|---|---:|---:|---:|"]
    for key, field, fmt in rows:
        lines.append(f"| {t('eval.cmp_' + key, lang)} | {_fmt(base.get(field), fmt)} | {_fmt(metrics.get(field), fmt)}"
                     f" | {_signed(delta.get(field), fmt)} |")
    return "\n".join(lines)


def training_note(metrics: dict[str, Any], lang: str = DEFAULT) -> str | None:
    """Were the scored rows trained on? Said plainly for a run's evaluation; None for a base model's."""
    if metrics.get("split") == "held_out":
        return t("eval.note_held_out", lang, samples=metrics.get("samples", 0))
    if metrics.get("in_training_unknown"):
        return t("eval.note_unknown", lang, why=metrics["in_training_unknown"])
    seen = metrics.get("in_training")
    if not isinstance(seen, int) or isinstance(seen, bool):
        return None
    if seen == 0:
        return t("eval.note_unseen", lang)
    return t("eval.note_trained", lang, count=seen, samples=metrics.get("samples", 0))


def _headline(metrics: dict[str, Any], lang: str) -> str:
    if is_pairwise(metrics):
        return t("eval.pair_headline", lang, accuracy=fmt_share(metrics.get("pairwise_accuracy")),
                 margin=fmt_float(metrics.get("mean_margin")) or "—", pairs=metrics.get("pairs", 0))
    return t("eval.headline", lang, loss=fmt_float(metrics.get("loss")) or "—",
             ppl=fmt_float(metrics.get("perplexity")) or "—", exact=fmt_share(metrics.get("exact_match")),
             rouge=fmt_share(metrics.get("rouge_l")), bleu=fmt_share(metrics.get("bleu")))


def dataset_label(metrics: dict[str, Any], lang: str = DEFAULT) -> str:
    return t("eval.held_out_name", lang) if metrics.get("split") == "held_out" else str(metrics.get("dataset", "?"))


def metrics_markdown(metrics: dict[str, Any], lang: str = DEFAULT) -> str:
    """The headline numbers of one evaluation, the base comparison, what they were measured on and whether the
    run had trained on those rows."""
    lines = [_headline(metrics, lang)]
    if not is_pairwise(metrics):
        lines.append(t("eval.measured_on", lang, samples=metrics.get("samples", 0), dataset=dataset_label(metrics, lang),
                       tokens=metrics.get("loss_tokens", 0), cutoff=metrics.get("cutoff_len", "?"),
                       predictions=metrics.get("predictions", 0), max_new=metrics.get("max_new_tokens", "?"),
                       duration=fmt_duration(metrics.get("seconds"), lang) or "?", device=metrics.get("device", "?"),
                       dtype=metrics.get("dtype", "")))
    else:
        lines.append(t("eval.pair_measured_on", lang, samples=metrics.get("samples", 0),
                       dataset=dataset_label(metrics, lang), cutoff=metrics.get("cutoff_len", "?"),
                       duration=fmt_duration(metrics.get("seconds"), lang) or "?"))
    weights = t("eval.weights", lang, model=metrics.get("model", "?"))
    if metrics.get("adapter"):
        weights += t("eval.weights_adapter", lang, adapter=metrics["adapter"])
    lines.append(f"`{metrics.get('id', '?')}` · {fmt_time(metrics.get('created_at'))} · {weights}")
    if (note := training_note(metrics, lang)) is not None:
        lines.append(note)
    skipped = metrics.get("skipped") or {}
    if skipped:
        lines.append(t("eval.skipped", lang, what=", ".join(f"{n} ({reason})" for reason, n in skipped.items())))
    if metrics.get("loss") is None and not is_pairwise(metrics):
        lines.append(t("eval.no_loss", lang))
    text = "  \n".join(lines)
    if metrics.get("base"):
        text += "\n\n" + t("eval.cmp_intro", lang, base=metrics["base"].get("model", "?")) + "\n\n" + \
            comparison_table(metrics, lang)
    return text


# -- tables ----------------------------------------------------------------------------------------------------------
def history_columns(lang: str = DEFAULT) -> list[str]:
    return [t(f"eval.col_{key}", lang) for key in HISTORY_KEYS]


def prediction_columns(lang: str = DEFAULT, keys: list[str] = PREDICTION_KEYS) -> list[str]:
    return [t(f"eval.col_{key}", lang) for key in keys]


def history_frame(evaluations: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    rows = []
    for e in evaluations:
        pairwise = is_pairwise(e)
        base = e.get("base") or {}
        loss = fmt_float(e.get("loss"))  # with the base model's beside it when it was compared
        loss += t("eval.history_base", lang, value=fmt_float(base["loss"])) if base.get("loss") is not None else ""
        rows.append([fmt_time(e.get("created_at")), e.get("id", ""), dataset_label(e, lang), e.get("samples", ""),
                     loss, fmt_float(e.get("perplexity")), fmt_share(e.get("exact_match")),
                     # a reward model's row: pairwise accuracy where a generative model's ROUGE-L goes
                     t("eval.pair_short", lang, accuracy=fmt_share(e.get("pairwise_accuracy"))) if pairwise
                     else fmt_share(e.get("rouge_l")), fmt_share(e.get("bleu"))])
    return pd.DataFrame(rows, columns=history_columns(lang))


def history_choices(evaluations: list[dict[str, Any]], lang: str = DEFAULT) -> list[tuple[str, str]]:
    return [(t("eval.history_choice", lang, when=fmt_time(e.get("created_at")), dataset=dataset_label(e, lang),
               loss=(fmt_float(e.get("loss")) or "—") if not is_pairwise(e)
               else fmt_share(e.get("pairwise_accuracy"))), str(e["id"])) for e in evaluations if e.get("id")]


def prompt_text(messages: list[dict[str, Any]], limit: int = PROMPT_CHARS, lang: str = DEFAULT) -> str:
    """A prompt as ``role: content`` lines (the role in ``lang``); the start of a long prompt gives way to its end
    (the newest turn)."""
    text = "\n".join(f"{role_label(str(m.get('role', '?')), lang)}: {m.get('content', '')}" for m in messages)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _trained(row: dict[str, Any], lang: str) -> str:
    return t("eval.trained_yes", lang) if row.get("in_training") else ""


def prediction_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Which columns the rows need: a reward model's pairs, base | run side by side, or one model's replies."""
    if any("chosen" in r for r in rows):
        return PAIR_KEYS
    if any("base_prediction" in r for r in rows):
        return SIDE_KEYS
    if any("in_training" in r for r in rows):
        return [*PREDICTION_KEYS, "trained"]
    return PREDICTION_KEYS


def _cells(row: dict[str, Any], key: str, lang: str) -> Any:
    margin = row.get("margin")
    cells = {
        "prompt": lambda: prompt_text(row.get("prompt") or [], lang=lang), "reference": lambda: row.get("reference", ""),
        "prediction": lambda: row.get("prediction", ""), "run_prediction": lambda: row.get("prediction", ""),
        "base_prediction": lambda: row.get("base_prediction", "—"), "rouge": lambda: fmt_share(row.get("rouge_l")),
        "exact": lambda: "✓" if row.get("exact_match") else "",
        "rouge_base_run": lambda: f"{fmt_share(row.get('base_rouge_l'))} → {fmt_share(row.get('rouge_l'))}",
        "trained": lambda: _trained(row, lang), "chosen": lambda: row.get("chosen", ""),
        "rejected": lambda: row.get("rejected", ""),
        "margin_base_run": lambda: f"{fmt_float(row.get('base_margin')) or '—'} → {fmt_float(margin) or '—'}",
        "ranked": lambda: ("✓" if row.get("correct") else "✗") + (
            f" ({'✓' if row['base_correct'] else '✗'})" if "base_correct" in row else ""),
    }
    return cells[key]()


def predictions_frame(rows: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    keys = prediction_keys(rows)
    table = [[_cells(r, key, lang) for key in keys] for r in rows]
    return pd.DataFrame(table, columns=prediction_columns(lang, keys))


def column_widths(rows: list[dict[str, Any]]) -> list[str]:
    """Percent widths for the predictions table: the replies get the room (they are what one reads). They add up
    to a little under 100%: cell padding and borders come on top, and a full 100% pushed the last column out of
    the frame (seen in Chromium)."""
    keys = prediction_keys(rows)
    total = sum(WIDTHS[k] for k in keys)
    return [f"{TABLE_SHARE * WIDTHS[k] / total:.1f}%" for k in keys]


def read_predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- what a target can be evaluated on -------------------------------------------------------------------------------
def has_held_out(job: Job | None) -> bool:
    """Did the run hold rows out of training (val_size or validation datasets)?"""
    config = (job or {}).get("config") or {}
    return bool((config.get("val_size") or 0) > 0 or config.get("val_datasets"))


def dataset_choices(datasets: list[dict[str, Any]], job: Job | None, lang: str = DEFAULT) -> list[tuple[str, str]]:
    """The run's held-out split first (when it has one), then the registered datasets; a reward model is offered
    only preference datasets (it scores chosen/rejected pairs)."""
    stage = ((job or {}).get("config") or {}).get("stage")
    usable = [d for d in datasets if stage != "rm" or d.get("format") == "preference"]
    choices = [(t("eval.dataset_choice", lang, name=d["name"], rows=d.get("num_rows", "?")), d["id"]) for d in usable]
    if has_held_out(job):
        choices.insert(0, (t("eval.held_out_choice", lang), HELD_OUT))
    return choices
