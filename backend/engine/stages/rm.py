"""Stage ``rm``: a reward model trained on chosen/rejected pairs with trl's RewardTrainer.

The base model gets a sequence-classification head with one output (``score``, freshly initialised) and learns to
score the chosen reply above the rejected one: loss -log σ(r(chosen) - r(rejected)), the Bradley-Terry objective
of InstructGPT. A sequence's reward is the head's output at its last token that is not padding. The pairs are
dpo's (:mod:`backend.engine.preference`: the same prompt and reply token ids), given to trl as whole sequences
(prompt + reply).

Methods: LoRA/QLoRA train the adapters and the head (peft's ``SEQ_CLS`` task keeps ``score`` in
``modules_to_save``, so the adapter directory holds the head too: it loads with
``AutoPeftModelForSequenceClassification``); full trains everything; freeze trains its layers and the head.
The output (model/ or adapter/) loads with ``AutoModelForSequenceClassification`` (num_labels 1). Logged per step:
``accuracy`` (share of pairs ranked right) and ``margin`` (mean r(chosen) - r(rejected)), in events.jsonl.
"""

from __future__ import annotations

from backend.config.schema import ResolvedRun
from backend.engine.data import DataStats, read_mixture
from backend.engine.preference import build_preference_examples, sequence_lengths
from backend.engine.stages.trainer import StageContext, trainer_class, training_args

__all__ = ["build_examples", "build_trainer", "load_model", "sequence_lengths", "to_reward_columns"]

HEAD = "score"  # the classification head transformers' *ForSequenceClassification models add


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    return build_preference_examples(run, tokenizer, stats, read_mixture(run, stats))


def load_model(model_path, dtype, **kwargs):
    """The base model with a one-output sequence-classification head (a new, randomly initialised ``score``)."""
    from transformers import AutoModelForSequenceClassification

    from backend.engine.failures import EngineError
    from backend.engine.model import check_model_dir

    try:
        model = AutoModelForSequenceClassification.from_pretrained(check_model_dir(model_path), num_labels=1,
                                                                   dtype=dtype, **kwargs)
    except ValueError as exc:  # an architecture without a sequence-classification class
        raise EngineError(f"stage rm needs a sequence-classification head and this model has none ({exc})",
                          "pick a decoder model transformers has a *ForSequenceClassification class for "
                          "(Llama, Qwen2, Mistral, Gemma...)") from exc
    model.config.use_cache = False
    return model


def to_reward_columns(dataset):
    """Our ``prompt_ids``/``chosen_ids``/``rejected_ids`` -> trl's ``chosen_ids``/``rejected_ids`` (whole sequences)."""
    def whole(example: dict) -> dict:
        prompt = example["prompt_ids"]
        return {"chosen_ids": prompt + example["chosen_ids"], "rejected_ids": prompt + example["rejected_ids"]}

    return None if dataset is None else dataset.map(whole, remove_columns=dataset.column_names)


def build_trainer(ctx: StageContext):
    from trl import RewardConfig, RewardTrainer

    config = ctx.run.config
    peft_config = ctx.peft_config
    if peft_config is not None:  # adapters + the new head, saved together
        peft_config.task_type = "SEQ_CLS"
        peft_config.modules_to_save = sorted({*(peft_config.modules_to_save or []), HEAD})
    else:
        getattr(ctx.model, HEAD).requires_grad_(True)  # freeze: its layers and the head
    ctx.facts["reward_head"] = f"{HEAD} (1 output, new)"
    args = training_args(RewardConfig, ctx, per_device_train_batch_size=config.per_device_batch_size,
                         max_length=None)  # the stage already truncated every pair to cutoff_len
    return trainer_class(RewardTrainer, ctx)(
        model=ctx.model, args=args, train_dataset=to_reward_columns(ctx.train_dataset),
        eval_dataset=to_reward_columns(ctx.eval_dataset), processing_class=ctx.tokenizer, peft_config=peft_config)
