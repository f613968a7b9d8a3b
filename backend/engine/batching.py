"""Token-budget micro-batches for padding-free packing.

Instead of a fixed number of examples per micro-batch, examples are grouped so that each group holds at most
``budget`` tokens (an example longer than the budget goes alone). Each group becomes one row of the training
dataset: its examples' token ids and labels concatenated, plus ``seq_lengths``, from which trl's padding-free
collator rebuilds per-example position ids and the cu_seq_lens of the varlen kernels, so no token attends across
examples. The trainer then takes one such row per micro-batch (per_device_train_batch_size = 1).

Groups are drawn once per run from a seeded shuffle, so every example is in exactly one group per epoch and a
resumed run sees the same groups; the trainer shuffles the order of the groups every epoch. The loss stays a
per-token mean over the whole optimizer step: transformers counts the label tokens of all accumulated
micro-batches (num_items_in_batch) and divides each micro-batch's summed loss by that count.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

OPEN_GROUPS = 8  # first-fit over the last few open groups: well filled, still linear time


def group_by_token_budget(lengths: Sequence[int], budget: int, seed: int = 0) -> list[list[int]]:
    """Indices of ``lengths`` grouped so that each group's lengths sum to at most ``budget`` (a longer example
    forms a group of its own). Every index appears exactly once."""
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, got {budget}")
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    done: list[list[int]] = []
    open_groups: list[tuple[int, list[int]]] = []  # (tokens used, indices)
    for index in order:
        size = int(lengths[index])
        if size >= budget:
            done.append([index])
            continue
        for slot, (used, members) in enumerate(open_groups):
            if used + size <= budget:
                members.append(index)
                open_groups[slot] = (used + size, members)
                break
        else:
            open_groups.append((size, [index]))
            if len(open_groups) > OPEN_GROUPS:
                fullest = max(range(len(open_groups)), key=lambda i: open_groups[i][0])
                done.append(open_groups.pop(fullest)[1])
    done.extend(members for _, members in open_groups)
    return done


def pack_dataset(dataset, budget: int, seed: int = 0):
    """A ``datasets.Dataset`` of ``input_ids``/``labels`` -> one row per token-budget group, with ``seq_lengths``."""
    from datasets import Dataset

    lengths = [len(ids) for ids in dataset["input_ids"]]
    input_ids, labels = dataset["input_ids"], dataset["labels"]
    rows = {"input_ids": [], "labels": [], "seq_lengths": []}
    for group in group_by_token_budget(lengths, budget, seed):
        rows["input_ids"].append([t for i in group for t in input_ids[i]])
        rows["labels"].append([t for i in group for t in labels[i]])
        rows["seq_lengths"].append([lengths[i] for i in group])
    return Dataset.from_dict(rows)


def describe_groups(dataset) -> str:
    """One log line: how many micro-batches, examples per micro-batch and tokens per micro-batch."""
    counts = [len(s) for s in dataset["seq_lengths"]]
    tokens = [sum(s) for s in dataset["seq_lengths"]]
    if not counts:
        return "token-budget batches: none"
    return (f"token-budget batches: {len(counts)} micro-batches of {min(counts)}-{max(counts)} examples "
            f"(mean {sum(counts) / len(counts):.1f}), {min(tokens)}-{max(tokens)} tokens (mean {sum(tokens) / len(tokens):.0f})")
