"""What every stage's trainer shares: the one place the run's settings become trainer arguments
(:func:`training_args`), the trainer class with the builders transformers cannot configure
(:func:`trainer_class`), and the finisher that hooks a built trainer to the run directory
(:func:`finish_trainer`: events, stop flag, pure-bf16 adapters)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.config import rundir
from backend.config.schema import ResolvedRun


@dataclass
class StageContext:
    """Everything a stage needs to build its trainer, resolved by the recipe."""

    run: ResolvedRun
    run_dir: Path
    model: Any
    tokenizer: Any
    peft_config: Any | None  # a peft LoraConfig for LoRA/QLoRA, else None (full/freeze)
    precision: Any  # backend.engine.model.Precision
    train_dataset: Any  # datasets.Dataset
    eval_dataset: Any | None
    checkpointing: bool = False
    liger: bool = False
    attention: str = "sdpa"
    packed_groups: bool = False  # every train row already is one token-budget micro-batch (backend.engine.batching)
    facts: dict = field(default_factory=dict)  # what the stage resolved, for engine.json and result.json


@dataclass
class TrainerHooks:
    """The callbacks :func:`finish_trainer` added: the train loss and where a stop request ended training."""

    events: Any  # backend.engine.callbacks.EventsCallback
    stop_request: Any  # backend.engine.callbacks.StopRequestCallback
    early_stop: Any = None  # backend.engine.early_stopping.EarlyStopOnEvalLoss when early stopping is on


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# warmup_stable_decay: warm up, hold the peak learning rate, then decay (cosine) over the last 10% of the steps
WSD_DECAY_SHARE = 0.1


def wsd_decay_steps(num_training_steps: int) -> int:
    # transformers' first decay step still runs at the peak rate: at least 2 so that short runs decay at all
    return min(num_training_steps, max(2, math.ceil(num_training_steps * WSD_DECAY_SHARE)))


def training_args(config_cls, ctx: StageContext, **extra):
    """``config_cls`` (trl's SFTConfig, DPOConfig, KTOConfig, RewardConfig...) with the run's shared settings,
    updated by the stage's ``extra``. The one place run settings become trainer arguments."""
    from backend.engine.early_stopping import best_tracking_args
    from backend.engine.trackers import tracker_args

    config = ctx.run.config
    has_eval = ctx.eval_dataset is not None
    eval_steps = (config.eval_steps or 0.2) if has_eval else None
    settings = dict(
        output_dir=str(ctx.run_dir / rundir.CHECKPOINTS_DIR),
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.effective_learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 100,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        optim=config.optimizer,
        neftune_noise_alpha=config.neftune_noise_alpha,
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        # LoRA/QLoRA/freeze train a fixed set of parameters that every forward uses: skip DDP's unused-param scan
        ddp_find_unused_parameters=False if config.method.name != "full" else None,
        include_num_input_tokens_seen="non_padding",
        **tracker_args(ctx.run),
        disable_tqdm=True,
        use_cpu=not has_cuda(),
        **ctx.precision.trainer_flags,
        **_checkpointing_flag(config_cls, ctx.checkpointing),
    )
    settings.update(best_tracking_args(config, eval_steps) if has_eval else {})
    return config_cls(**{**settings, **extra})


def _checkpointing_flag(config_cls, enabled: bool) -> dict:
    """transformers 5 renamed gradient_checkpointing to activation_checkpointing (trl defaults it to True)."""
    if "activation_checkpointing" in config_cls.__dataclass_fields__:
        return {"activation_checkpointing": enabled}
    return {"gradient_checkpointing": enabled}


def trainer_class(base, ctx: StageContext):
    """``base`` (a trl trainer class) plus two builders transformers cannot configure: LoRA+ optimizer groups and
    a warmup-stable-decay schedule whose decay length follows the run's total steps."""
    from transformers.optimization import get_wsd_schedule

    from backend.engine import methods

    loraplus_lr_ratio = getattr(ctx.run.config.method, "loraplus_lr_ratio", None)

    class TunesmithTrainer(base):
        def create_optimizer(self, model=None):
            if self.optimizer is not None or not loraplus_lr_ratio:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = methods.loraplus_param_groups(opt_model, lr=self.args.learning_rate, ratio=loraplus_lr_ratio,
                                                   weight_decay=self.args.weight_decay,
                                                   decay_names=self.get_decay_parameter_names(opt_model))
            self.optimizer = optimizer_cls(groups, **kwargs)
            return self.optimizer

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None and str(getattr(self.args.lr_scheduler_type, "value",
                                                         self.args.lr_scheduler_type)) == "warmup_stable_decay":
                self.lr_scheduler = get_wsd_schedule(
                    optimizer or self.optimizer,
                    num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                    num_decay_steps=wsd_decay_steps(num_training_steps),
                    num_training_steps=num_training_steps,
                )
                self._created_lr_scheduler = True
                return self.lr_scheduler
            return super().create_scheduler(num_training_steps, optimizer)

    TunesmithTrainer.__name__ = TunesmithTrainer.__qualname__ = f"Tunesmith{base.__name__}"
    return TunesmithTrainer


def finish_trainer(trainer, ctx: StageContext) -> TrainerHooks:
    """Hook a stage's trainer to the run directory: events.jsonl (instead of the trainer's own printing), the
    stop flag of "Stop & save", early stopping on the eval loss, and pure-bf16 adapters (peft keeps them in fp32
    otherwise)."""
    import torch
    from transformers import PrinterCallback

    from backend.engine import methods
    from backend.engine.callbacks import EventsCallback, StopRequestCallback

    if ctx.precision.pure:
        methods.cast_trainable_to(trainer.model, torch.bfloat16)
    trainer.remove_callback(PrinterCallback)  # EventsCallback prints its own progress line
    hooks = TrainerHooks(events=EventsCallback(ctx.run_dir / rundir.EVENTS_FILE,  # grpo: its sampled replies too
                                               samples=getattr(trainer, "sampled_completions", None)),
                         stop_request=StopRequestCallback(ctx.run_dir / rundir.STOP_FILE))
    trainer.add_callback(hooks.events)
    trainer.add_callback(hooks.stop_request)
    config = ctx.run.config
    if config.early_stopping_patience is not None:
        from backend.engine.early_stopping import EarlyStopOnEvalLoss

        hooks.early_stop = EarlyStopOnEvalLoss(config.early_stopping_patience, config.early_stopping_threshold)
        trainer.add_callback(hooks.early_stop)
    if config.report_to != "none":
        from backend.engine.trackers import EvaluateAtLastStep, RunConfigToTracker

        trainer.add_callback(RunConfigToTracker(ctx.run, trainer, ctx.facts, ctx.run_dir))
        trainer.add_callback(EvaluateAtLastStep())
    return hooks
