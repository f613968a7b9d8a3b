"""Stage ``dpo``: Direct Preference Optimization (and its loss variants) on chosen/rejected pairs, with trl's
DPOTrainer taking our token ids (:mod:`backend.engine.preference`) as they are. The reference-free losses orpo and
simpo train with other trainers: :mod:`backend.engine.stages.reference_free`.

The reference model: LoRA/QLoRA -> the same model with the adapter switched off (trl does that when
``ref_model`` is None); full/freeze -> a frozen copy of the base model, loaded from its directory in the compute
dtype. Logged per step: loss and trl's rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies,
which backend.engine.callbacks writes to events.jsonl.
"""

from __future__ import annotations

from backend.config.schema import ResolvedRun
from backend.engine.data import DataStats, read_mixture
from backend.engine.model import load_model
from backend.engine.preference import build_preference_examples, sequence_lengths
from backend.engine.stages.trainer import StageContext, trainer_class, training_args

__all__ = ["build_examples", "build_trainer", "load_model", "load_reference_model", "sequence_lengths"]


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    return build_preference_examples(run, tokenizer, stats, read_mixture(run, stats))


def load_reference_model(ctx: StageContext):
    """None with LoRA/QLoRA (trl switches the adapter off); full/freeze: a frozen copy of the base model (the
    policy's starting point), in the compute dtype."""
    from backend.engine import model as model_io

    if ctx.peft_config is not None:
        ctx.facts["reference_model"] = "base with the adapter switched off"
        return None
    ctx.facts["reference_model"] = "frozen copy of the base model"
    reference = model_io.load_model(ctx.run.model_path, ctx.precision.dtype, attn_implementation=ctx.attention)
    reference.requires_grad_(False)
    return reference.eval()


def preference_args(ctx: StageContext) -> dict:
    """Settings the preference stages share."""
    config = ctx.run.config
    return {"per_device_train_batch_size": config.per_device_batch_size, "beta": config.preference.effective_beta,
            "max_length": None,  # the stage already truncated every example to cutoff_len
            "use_liger_kernel": ctx.liger}


def build_trainer(ctx: StageContext):
    from trl import DPOConfig, DPOTrainer

    pref = ctx.run.config.preference
    if pref.reference_free:  # orpo, simpo: other trainers, no reference model
        from backend.engine.stages.reference_free import build_trainer as build_reference_free_trainer

        return build_reference_free_trainer(ctx)
    losses = {"loss_type": [pref.loss], "loss_weights": [1.0]}
    if pref.sft_weight > 0:  # RPO / LLaMA-Factory's pref_ftx: NLL of the chosen reply, weighted
        losses = {"loss_type": [pref.loss, "sft"], "loss_weights": [1.0, pref.sft_weight]}
    args = training_args(DPOConfig, ctx, **preference_args(ctx), **losses)

    class TunesmithDPOTrainer(trainer_class(DPOTrainer, ctx)):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # already prompt_ids/chosen_ids/rejected_ids from our template rendering

    return TunesmithDPOTrainer(model=ctx.model, ref_model=load_reference_model(ctx), args=args,
                               train_dataset=ctx.train_dataset, eval_dataset=ctx.eval_dataset,
                               processing_class=ctx.tokenizer, peft_config=ctx.peft_config)
