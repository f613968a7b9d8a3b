"""Stage ``sft``: supervised chat fine-tuning with trl's SFTTrainer, loss on the assistant turns.

Examples: a preference row's chosen reply (``rejected`` is not used), only the KTO rows labelled true (the others
are set aside and counted), never raw text (a DataError saying to use stage ``pt``). Loss mask by our own code
(:func:`backend.engine.data.tokenize_conversation`): only assistant turns (tool calls included) carry loss, or
every token with ``train_on_prompt``; longer than cutoff_len is truncated, nothing left to learn is dropped.
"""

from __future__ import annotations

from backend.config.schema import ResolvedRun
from backend.engine.data import (
    IGNORE_INDEX,
    DataStats,
    Mixture,
    read_mixture,
    tokenize_row,
)
from backend.engine.model import load_model  # noqa: F401 - the stage's model: a causal LM
from backend.engine.rows import Row
from backend.engine.stages.trainer import (
    StageContext,
    has_cuda,
    trainer_class,
    training_args,
)


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    mixture = read_mixture(run, stats)
    return (sft_examples(mixture.train, tokenizer, run, stats, mixture),
            sft_examples(mixture.eval, tokenizer, run, stats, mixture, evaluation=True))


def sft_examples(rows: list[tuple[int, Row]], tokenizer, run: ResolvedRun, stats: DataStats, mixture: Mixture,
                 evaluation: bool = False) -> list[dict[str, list[int]]]:
    """Tokenize, truncate to cutoff_len and drop examples with nothing to learn (a repeated row is tokenized once)."""
    config = run.config
    cache: dict[int, dict | None] = {}
    examples = []
    for index, row in rows:
        if id(row) not in cache:
            example = tokenize_row(tokenizer, row, config.train_on_prompt)
            if len(example["input_ids"]) > config.cutoff_len:
                stats.truncated += 1
                example = {key: value[: config.cutoff_len] for key, value in example.items()}
            if all(label == IGNORE_INDEX for label in example["labels"]):
                stats.dropped_no_target += 1
                example = None
            cache[id(row)] = example
        if cache[id(row)] is not None:
            examples.append(cache[id(row)])
            mixture.count(index, 1, evaluation)
    return examples


def sequence_lengths(dataset) -> tuple[list[int], int]:
    """``(lengths, sequences per example)`` for the memory plan."""
    return [len(ids) for ids in dataset["input_ids"]], 1


def build_trainer(ctx: StageContext):
    """trl's SFTTrainer on our token ids and labels (sft and pt)."""
    from transformers import Trainer
    from trl import SFTConfig, SFTTrainer

    config = ctx.run.config
    args = training_args(
        SFTConfig, ctx,
        per_device_train_batch_size=1 if ctx.packed_groups else config.per_device_batch_size,
        max_length=None,  # the stage already truncated every example to cutoff_len
        dataset_kwargs={"skip_prepare_dataset": True},  # already tokenized + labelled + truncated
        padding_free=config.packing,
        packing=ctx.packed_groups,  # rows are pre-packed groups; trl only reads their seq_lengths (no re-packing)
        use_liger_kernel=ctx.liger,
    )
    plain_loss = not has_cuda()

    class TunesmithSFTTrainer(trainer_class(SFTTrainer, ctx)):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """On CPU: transformers' own causal-LM loss on the same labels, skipping trl's per-step
            entropy/token-accuracy pass over the full vocabulary, which costs 2 CPU cores dearly."""
            if not plain_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return TunesmithSFTTrainer(model=ctx.model, args=args, train_dataset=ctx.train_dataset,
                               eval_dataset=ctx.eval_dataset, processing_class=ctx.tokenizer,
                               peft_config=ctx.peft_config)
