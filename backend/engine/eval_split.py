"""Which rows an evaluation of a run scores, and which of them the run trained on.

The run's own split comes from the training code itself (:func:`backend.engine.data.read_mixture` on the run's
run.yaml: the same datasets, caps, ``val_size``, validation datasets and seed), so the held-out rows are exactly
the rows training kept out of its mixture, never a re-implementation of the split. The same mixture says which
rows were trained on: an evaluated row whose content equals a training row's counts as "in the training data"
(a duplicate of a trained row was seen in training too, whichever copy was held out).
"""

from __future__ import annotations

import json

from backend.config.schema import ResolvedRun
from backend.engine.data import DataStats, read_mixture
from backend.engine.failures import DataError, EngineError
from backend.engine.rows import Row

SPLITS = ("dataset", "held_out")  # a registered dataset's first rows, or the run's validation rows


def row_key(row: Row) -> str:
    """A row's content as one string (equal rows, equal keys)."""
    return json.dumps([row.messages, row.tools, row.rejected, row.label, row.text], sort_keys=True,
                      ensure_ascii=False)


def has_held_out(run: ResolvedRun) -> bool:
    """Does the run hold rows out of training (``val_size`` or validation datasets)?"""
    return run.config.val_size > 0 or bool(run.val_datasets)


def held_out_rows(run: ResolvedRun, max_samples: int | None) -> list[Row]:
    """The first ``max_samples`` rows of the run's validation split, in the order training evaluated them."""
    if not has_held_out(run):
        raise EngineError(f"run {run.run_id} has no held-out split (val_size is 0 and it names no validation "
                          "datasets)", "evaluate it on a dataset instead, or train with val_size > 0")
    rows = [row for _, row in read_mixture(run, DataStats()).eval]
    if not rows:
        raise EngineError(f"run {run.run_id}'s held-out split is empty (its datasets have too few rows to hold "
                          "one out)", "evaluate it on a dataset instead")
    return rows[:max_samples] if max_samples is not None else rows


def training_keys(run: ResolvedRun) -> set[str]:
    """The content keys of every row the run trained on (its mixture's training rows)."""
    return {row_key(row) for _, row in read_mixture(run, DataStats()).train}


def mark_trained(rows: list[Row], run: ResolvedRun) -> tuple[list[bool] | None, str | None]:
    """For each row: was it (or an equal row) in the run's training data? ``(None, why)`` when the run's training
    data can no longer be read (a deleted dataset): unknown, said so, rather than guessed."""
    try:
        keys = training_keys(run)
    except DataError as exc:
        return None, f"the run's training data cannot be read ({exc})"
    return [row_key(row) in keys for row in rows], None
