"""Stage ``dpo`` with a reference-free loss: ORPO and SimPO compare the policy's own log-probabilities of the chosen
and the rejected reply, so no reference model is loaded or consulted (``trainer.ref_model`` does not exist).

- ``orpo`` (Hong et al. 2024): the SFT loss on the chosen reply minus λ x log σ(log odds(chosen) - log odds(rejected)),
  on per-token averaged log-probabilities; λ = ``preference.orpo_lambda`` (paper: 0.1). trl.experimental's
  ORPOTrainer.
- ``simpo`` (Meng et al. 2024): -log σ(β/|y_w| log π(y_w) - β/|y_l| log π(y_l) - γ); β = ``preference.beta`` (paper:
  2.0), γ = ``preference.simpo_gamma`` (paper: γ/β = 0.5), plus ``sft_weight`` x the SFT loss (CPO-SimPO's α).
  trl.experimental's CPOTrainer with loss_type simpo.

Both trainers tokenize text themselves; they get our prompt/chosen/rejected ids instead (the same tokens as dpo,
:mod:`backend.engine.preference`) in the columns their tokenizer would write. Logged per step like dpo:
rewards/chosen, rewards/rejected (β or λ x the averaged log-probabilities), rewards/margins, rewards/accuracies.
"""

from __future__ import annotations

from backend.engine.data import IGNORE_INDEX
from backend.engine.stages.trainer import StageContext, trainer_class, training_args


def to_paired_columns(dataset):
    """``prompt_ids``/``chosen_ids``/``rejected_ids`` -> the ``prompt_*``, ``chosen_*``, ``rejected_*`` input ids,
    attention masks and labels (prompt tokens -100) that trl's ORPO/CPO trainers tokenize text into."""
    def convert(example: dict) -> dict:
        prompt = example["prompt_ids"]
        columns = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
        for side in ("chosen", "rejected"):
            reply = example[f"{side}_ids"]
            columns[f"{side}_input_ids"] = prompt + reply
            columns[f"{side}_attention_mask"] = [1] * (len(prompt) + len(reply))
            columns[f"{side}_labels"] = [IGNORE_INDEX] * len(prompt) + reply
        return columns

    return None if dataset is None else dataset.map(convert, remove_columns=dataset.column_names)


def build_trainer(ctx: StageContext):
    config = ctx.run.config
    pref = config.preference
    if pref.loss == "orpo":
        from trl.experimental.orpo import ORPOConfig as config_cls
        from trl.experimental.orpo import ORPOTrainer as base

        loss_args = {"beta": pref.orpo_lambda}  # trl's ORPO names λ beta
    else:
        from trl.experimental.cpo import CPOConfig as config_cls
        from trl.experimental.cpo import CPOTrainer as base

        loss_args = {"loss_type": "simpo", "beta": pref.effective_beta, "simpo_gamma": pref.simpo_gamma,
                     "cpo_alpha": pref.sft_weight}
    ctx.facts["reference_model"] = "none"
    args = training_args(config_cls, ctx, per_device_train_batch_size=config.per_device_batch_size,
                         max_length=config.cutoff_len,  # the stage already truncated every pair to it
                         # their batches have no input_ids column to count tokens from
                         include_num_input_tokens_seen="no", **loss_args)

    class ReferenceFreeTrainer(trainer_class(base, ctx)):
        def tokenize_row(self, feature, model=None):
            return feature  # already our token ids, in the columns trl's tokenizer would write

    return ReferenceFreeTrainer(model=ctx.model, args=args, train_dataset=to_paired_columns(ctx.train_dataset),
                                eval_dataset=to_paired_columns(ctx.eval_dataset), processing_class=ctx.tokenizer,
                                peft_config=ctx.peft_config)
