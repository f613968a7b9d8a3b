"""Stage ``kto``: Kahneman-Tversky Optimization on replies labelled desirable or not (KTO rows, or preference
pairs unpaired: chosen desirable, rejected undesirable), with trl's KTOTrainer on our token ids.

trl reads KTO examples in order (its KL term pairs each prompt with a neighbour's reply), so the training
examples are shuffled once with the seed (:func:`backend.engine.preference.preference_examples`). The reference
model is dpo's (:func:`backend.engine.stages.dpo.load_reference_model`).
"""

from __future__ import annotations

from backend.engine.preference import sequence_lengths
from backend.engine.stages.dpo import (
    build_examples,
    load_model,
    load_reference_model,
    preference_args,
)
from backend.engine.stages.trainer import StageContext, trainer_class, training_args

__all__ = ["build_examples", "build_trainer", "load_model", "sequence_lengths"]


def build_trainer(ctx: StageContext):
    from trl import KTOConfig, KTOTrainer

    pref = ctx.run.config.preference
    args = training_args(KTOConfig, ctx, **preference_args(ctx), desirable_weight=pref.desirable_weight,
                         undesirable_weight=pref.undesirable_weight)

    class TunesmithKTOTrainer(trainer_class(KTOTrainer, ctx)):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            """Our prompt_ids/completion_ids/label, plus trl's KL completions: each micro-batch's replies shifted
            by one, so every prompt is paired with a neighbour's reply (the KTO paper's KL estimate)."""
            if not self.calculate_KL:
                return dataset

            def add_kl_completions(batch):
                batch["KL_completion_ids"] = batch["completion_ids"][-1:] + batch["completion_ids"][:-1]
                return batch

            return dataset.map(add_kl_completions, batched=True, batch_size=args.per_device_train_batch_size)

    return TunesmithKTOTrainer(model=ctx.model, ref_model=load_reference_model(ctx), args=args,
                               train_dataset=ctx.train_dataset, eval_dataset=ctx.eval_dataset,
                               processing_class=ctx.tokenizer, peft_config=ctx.peft_config)
