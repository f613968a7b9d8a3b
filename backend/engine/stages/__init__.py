"""The training stages, one module each behind one small interface (:class:`Stage`):

- ``build_examples(run, tokenizer, stats) -> (train, eval)``: the run's mixture of rows as the stage's
  examples (token ids), counted into ``stats``;
- ``build_trainer(ctx) -> Trainer``: the stage's trl trainer from a :class:`StageContext`;
- ``sequence_lengths(dataset) -> (lengths, sequences per example)``: what the memory plan needs;
- ``load_model(model_path, dtype, **kwargs)``: the base model with the stage's head (a causal LM but for rm).

==========  ======================================================  ===================================
stage       examples                                                trainer
==========  ======================================================  ===================================
sft         conversations, loss on assistant turns                  trl SFTTrainer
pt          raw text packed into cutoff_len blocks                  trl SFTTrainer (stage sft's)
dpo         prompt + chosen/rejected reply ids                      trl DPOTrainer
kto         prompt + reply ids labelled desirable or not            trl KTOTrainer
rm          prompt + chosen/rejected reply ids (dpo's)              trl RewardTrainer (a score head)
grpo        prompt messages + a reference reply                     trl GRPOTrainer + reward functions
==========  ======================================================  ===================================

The recipe (:mod:`backend.engine.recipe`) picks the stage and finishes its trainer the same way for every
stage (:func:`backend.engine.stages.trainer.finish_trainer`).
"""

from __future__ import annotations

from typing import Any, Protocol

from backend.config.schema import ResolvedRun
from backend.engine.data import DataStats
from backend.engine.failures import DataError
from backend.engine.stages import dpo, grpo, kto, pt, rm, sft
from backend.engine.stages.trainer import StageContext

__all__ = ["STAGES", "Stage", "StageContext", "build_datasets", "build_examples", "get_stage"]


class Stage(Protocol):
    def build_examples(self, run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]: ...

    def build_trainer(self, ctx: StageContext) -> Any: ...

    def sequence_lengths(self, dataset) -> tuple[list[int], int]: ...

    def load_model(self, model_path, dtype, **kwargs) -> Any: ...


STAGES: dict[str, Stage] = {"sft": sft, "pt": pt, "dpo": dpo, "kto": kto, "rm": rm, "grpo": grpo}


def get_stage(name: str) -> Stage:
    return STAGES[name]


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    """``(train examples, eval examples)`` of the run's stage, their count in ``stats.kept``."""
    train, held = get_stage(run.config.stage).build_examples(run, tokenizer, stats)
    stats.kept = len(train) + len(held)
    return train, held


def build_datasets(run: ResolvedRun, tokenizer):
    """Return ``(train_dataset, eval_dataset_or_None, stats)`` as pre-tokenized ``datasets.Dataset``s; a run that
    would train on nothing is a DataError saying why."""
    from datasets import Dataset

    if not run.datasets:
        raise DataError("the run has no datasets", "pick at least one registered dataset")
    stats = DataStats()
    train, held_out = build_examples(run, tokenizer, stats)
    if not train:
        raise DataError(
            f"no usable examples: {stats.read} rows read, {stats.dropped_no_target} had no assistant tokens "
            f"within cutoff_len={run.config.cutoff_len}",
            "check the dataset has assistant turns (and KTO rows labelled true), raise cutoff_len, "
            "or enable train_on_prompt",
        )
    if run.val_datasets and not held_out:
        names = ", ".join(repr(ref.name) for ref in run.val_datasets)
        raise DataError(f"the validation dataset(s) {names} gave no usable examples within "
                        f"cutoff_len={run.config.cutoff_len}",
                        "pick a validation dataset with assistant turns, or raise cutoff_len")
    stats.train, stats.eval = len(train), len(held_out)
    eval_dataset = Dataset.from_list(held_out) if held_out else None
    return Dataset.from_list(train), eval_dataset, stats
