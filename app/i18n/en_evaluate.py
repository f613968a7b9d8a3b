"""English: strings of the evaluate area. Part of :data:`app.i18n.en.MESSAGES` (one part per area keeps each catalog module
small and lets areas grow without touching each other)."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "eval.with_base": "Compare with the base model",
    "eval.with_base_help": "Score the run's base model on the same rows too (a reward model: the untrained head it started from) and show both side by side.",
    "eval.running_base": "Evaluating the run, then its base model on the same rows: loading, scoring the loss, generating predictions…",
    "eval.held_out_choice": "Held-out split of this run (rows it did not train on)",
    "eval.held_out_name": "held-out split",
    "eval.note_held_out": "✓ Held-out split: these {samples} rows were kept out of training, so the numbers say how the run does on data it has not seen.",
    "eval.note_unseen": "✓ None of these rows were in the run's training data.",
    "eval.note_trained": "⚠ These rows were in the training data: {count} of the {samples} rows were trained on, so they score better than new data would. Pick the held-out split (or another dataset) for an honest number.",
    "eval.note_unknown": "⚠ Whether the run trained on these rows is unknown: {why}.",
    "eval.cmp_intro": "**Run vs base model** (`{base}`, same rows, same tokens):",
    "eval.cmp_metric": "metric",
    "eval.cmp_base": "base model",
    "eval.cmp_run": "this run",
    "eval.cmp_loss": "loss",
    "eval.cmp_perplexity": "perplexity",
    "eval.cmp_exact": "exact match",
    "eval.cmp_rouge": "ROUGE-L",
    "eval.cmp_bleu": "BLEU-4",
    "eval.cmp_pair_accuracy": "pairwise accuracy",
    "eval.cmp_pair_margin": "mean margin",
    "eval.pair_headline": "**pairwise accuracy {accuracy}** · mean margin {margin} · {pairs} pairs (share of pairs whose chosen reply scores above the rejected one)",
    "eval.pair_measured_on": "{samples} pairs of `{dataset}` · cutoff {cutoff} · {duration}",
    "eval.pair_short": "pairs {accuracy}",
    "eval.col_base_prediction": "prediction (base model)",
    "eval.col_run_prediction": "prediction (this run)",
    "eval.col_rouge_base_run": "ROUGE-L base → run",
    "eval.col_trained": "trained on",
    "eval.trained_yes": "⚠ yes",
    "eval.col_chosen": "chosen",
    "eval.col_rejected": "rejected",
    "eval.col_margin_base_run": "margin base → run",
    "eval.col_ranked": "ranked right (base)",
}
