"""Dataset mixtures and held-out splits: which rows of which dataset a run trains and evaluates on.

Pure Python, deterministic for a given seed (``random.Random`` seeded with strings is stable across runs).

- Without weights the datasets are concatenated: every usable row once, in file order.
- With weights ``w_i`` each dataset makes up ``w_i / sum(w)`` of the training examples. The total is
  ``mixture_size`` when given, else the largest total that repeats no row (the dataset that runs out first
  sets it, like LLaMA-Factory's ``interleave_under``). A dataset's count is its share of the total, rounded by
  largest remainder so the counts add up exactly. Rows are drawn without replacement; when a count exceeds
  the dataset's rows it is used in whole passes plus a random remainder (every row once per pass, as
  ``interleave_over`` would repeat it). The drawn rows of all datasets are then shuffled together.
- ``val_size`` holds out that share of each dataset's usable rows before mixing, so no held-out row is ever
  trained on, even when a dataset repeats.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import TypeVar

T = TypeVar("T")


def split_examples(examples: list[T], val_size: float, seed: int | str) -> tuple[list[T], list[T]]:
    """Hold out ``val_size`` of the examples (at least one when val_size > 0, never all) for the eval loss;
    both parts keep their original order."""
    if val_size <= 0 or len(examples) < 2:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(examples) - 1, max(1, round(len(examples) * val_size)))
    held_out = set(order[:n_eval])
    train = [ex for i, ex in enumerate(examples) if i not in held_out]
    return train, [examples[i] for i in sorted(held_out)]


def mixture_counts(available: Sequence[int], weights: Sequence[float], size: int | None = None) -> list[int]:
    """How many examples each dataset contributes to a weighted mixture (see the module docstring).

    A dataset with weight > 0 and no rows makes a no-repeat mixture empty; callers refuse that first."""
    exact_weights = [Fraction(repr(float(w))) for w in weights]  # 0.7 as written, not its binary neighbour
    total = sum(exact_weights)
    shares = [w / total for w in exact_weights]
    if size is None:
        size = min((math.floor(Fraction(n) / share) for n, share in zip(available, shares) if share > 0), default=0)
    exact = [share * size for share in shares]
    counts = [math.floor(x) for x in exact]
    # largest remainder (ties: the earlier dataset) so the counts add up to size exactly
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    return counts


def draw(rows: list[T], count: int, seed: str) -> list[T]:
    """``count`` rows: whole passes over ``rows`` plus a random sample of the rest, without replacement
    within a pass; a partial pass keeps file order."""
    if not rows or count <= 0:
        return []
    passes, remainder = divmod(count, len(rows))
    picked = sorted(random.Random(seed).sample(range(len(rows)), remainder))
    return rows * passes + [rows[i] for i in picked]


def mix(sources: list[list[T]], weights: list[float] | None, size: int | None, seed: int
        ) -> tuple[list[tuple[int, T]], list[int]]:
    """The training mixture as ``(source index, item)`` pairs plus each source's count.

    ``weights`` None: every item of every source once, in order. Otherwise drawn per :func:`mixture_counts`
    and shuffled together."""
    if weights is None:
        mixed = [(i, item) for i, items in enumerate(sources) for item in items]
        return mixed, [len(items) for items in sources]
    counts = mixture_counts([len(s) for s in sources], weights, size)
    mixed = [(i, item) for i, (items, count) in enumerate(zip(sources, counts))
             for item in draw(items, count, f"draw:{seed}:{i}")]
    random.Random(f"mix:{seed}").shuffle(mixed)
    return mixed, counts
