"""The Runs card's lines on early stopping and the best checkpoint, from the engine's facts (engine.json:
``early_stopping`` and ``best_checkpoint``, written when training ends)."""

from __future__ import annotations

from app.format import fmt_float
from app.i18n import DEFAULT, t


def stopping_facts(engine: dict | None, lang: str = DEFAULT) -> list[tuple[str, str]]:
    """(label, value) pairs: where and why early stopping ended the run (or that it did not), and which step's
    checkpoint is the best and whether it is the run's output."""
    facts: list[tuple[str, str]] = []
    early = (engine or {}).get("early_stopping")
    if isinstance(early, dict):
        if early.get("stopped"):
            value = t("runs.early_stopped", lang, step=early.get("stopped_at_step"), total=early.get("max_steps"),
                      patience=early.get("patience"), threshold=fmt_float(early.get("threshold")))
        else:
            value = t("runs.early_not_stopped", lang)
        facts.append((t("runs.fact_early_stopping", lang), value))
    best = (engine or {}).get("best_checkpoint")
    if isinstance(best, dict) and best.get("step"):
        key = "runs.best_loaded" if best.get("loaded") else "runs.best_not_loaded"
        facts.append((t("runs.fact_best", lang), t(key, lang, step=best["step"], loss=fmt_float(best.get("eval_loss")))))
    return facts
