"""When early stopping and keeping the best checkpoint make sense for a run: both need an evaluation loss, so a
run without validation data (val_size or val_datasets) or of a stage that logs none is refused at submit, never
left to train to the end as if they were on. Pure Python, no torch."""

from __future__ import annotations

# stages whose trainer logs eval_loss on the validation rows (grpo evaluates rewards, not a loss)
EVAL_LOSS_STAGES = ("sft", "pt", "dpo", "kto", "rm")


def best_checkpoint_problem(*, stage: str, has_validation: bool, early_stopping_patience: int | None,
                            early_stopping_threshold: float, load_best_model_at_end: bool) -> str | None:
    """Why early stopping / load_best_model_at_end cannot work for this run (None when they can)."""
    if early_stopping_threshold and early_stopping_patience is None:
        return ("early_stopping_threshold applies to early stopping, which is off; set early_stopping_patience "
                "(e.g. 3) or reset early_stopping_threshold to 0")
    asked = [name for name, on in (("early_stopping_patience", early_stopping_patience is not None),
                                   ("load_best_model_at_end", load_best_model_at_end)) if on]
    if not asked:
        return None
    what = " and ".join(asked)
    if not has_validation:
        return (f"{what} watch the evaluation loss and the run has no validation data; set val_size (e.g. 0.1) or "
                "val_datasets, or clear " + what)
    if stage not in EVAL_LOSS_STAGES:
        return f"{what} watch the evaluation loss and stage {stage!r} logs none; clear {what}"
    return None
