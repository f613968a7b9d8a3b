"""A run's training datasets: a plain id, or an entry with a sampling weight and a cap (a mixture)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from backend.config.methods import StrictModel as _Strict


class DatasetChoice(_Strict):
    """One dataset of a mixture: which one, its sampling weight and how many of its examples at most."""

    id: str = Field(..., min_length=1, description="Registered dataset id (or name).")
    weight: float | None = Field(
        None, ge=0.0, le=1e6,
        description="Relative share of this dataset in the training examples (weights are normalized to sum to 1; "
        "0 = leave it out). Give every dataset a weight, or none.",
    )
    max_samples: int | None = Field(
        None, ge=1, description="Use at most the first N usable rows of this dataset (overrides max_samples)."
    )


def _entry_kind(value: Any) -> str:
    return "id" if isinstance(value, str) else "entry"


# a plain id (the simple form) or a DatasetChoice; the tag keeps error locations short: datasets.0.entry.weight
DatasetEntry = Annotated[
    Annotated[str, Tag("id")] | Annotated[DatasetChoice, Tag("entry")], Discriminator(_entry_kind)
]

MIXTURE_HELP = (
    'Datasets to train on: registered ids (or names), e.g. ["ds_a", "ds_b"], or entries with a sampling weight and '
    'a cap, e.g. [{"id": "ds_a", "weight": 0.7, "max_samples": 500}, {"id": "ds_b", "weight": 0.3}]. '
    "Without weights every usable row of every dataset is used once (concatenation). With weights, each dataset "
    "makes up weight / sum(weights) of the training examples; the total is mixture_size when set, else the largest "
    "size that repeats no example (the first dataset to run out sets it). Rows are drawn without replacement; a "
    "dataset repeats only when its share of mixture_size exceeds its rows (every row once per pass). The draw is "
    "deterministic for a given seed."
)
