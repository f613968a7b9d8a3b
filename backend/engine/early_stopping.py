"""Early stopping on the evaluation loss and the best checkpoint: the trainer arguments that track the best
eval loss (:func:`best_tracking_args`), a callback that ends training when it stops improving and remembers
where and why (:class:`EarlyStopOnEvalLoss`), and the facts result.json / engine.json carry about both
(:func:`best_checkpoint_facts`)."""

from __future__ import annotations

from transformers import EarlyStoppingCallback

from backend.config.schema import RunConfig


def tracks_best(config: RunConfig) -> bool:
    return config.early_stopping_patience is not None or config.load_best_model_at_end


def best_tracking_args(config: RunConfig, eval_steps: int | float | None) -> dict:
    """Trainer arguments that record the lowest eval loss and its step; with load_best_model_at_end a checkpoint
    is saved at every evaluation (transformers needs save steps to be a multiple of eval steps, and the best step
    must have a checkpoint to come back to)."""
    if not tracks_best(config):
        return {}
    args: dict = {"metric_for_best_model": "eval_loss", "greater_is_better": False,
                  "load_best_model_at_end": config.load_best_model_at_end}
    if config.load_best_model_at_end:
        args.update(save_strategy="steps", save_steps=eval_steps)
    return args


class EarlyStopOnEvalLoss(EarlyStoppingCallback):
    """transformers' early stopping (patience evaluations without an improvement of more than threshold),
    remembering the step it stopped at, for the run's facts. Every process sees the same gathered eval loss, so
    all stop at the same step."""

    def __init__(self, patience: int, threshold: float):
        super().__init__(early_stopping_patience=patience, early_stopping_threshold=threshold)
        self.stopped_at: int | None = None

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if control.should_training_stop and self.stopped_at is None and state.global_step < state.max_steps:
            self.stopped_at = state.global_step
            if state.is_world_process_zero:
                print(f"early stopping at step {state.global_step} of {state.max_steps}: eval loss did not improve "
                      f"by more than {self.early_stopping_threshold} for {self.early_stopping_patience} "
                      f"evaluation(s) (best {state.best_metric} at step {state.best_global_step})", flush=True)
        return control


def best_checkpoint_facts(config: RunConfig, state, early_stop: EarlyStopOnEvalLoss | None) -> dict:
    """``early_stopping``: whether and where training stopped and why; ``best_checkpoint``: the step with the
    lowest eval loss and whether the output is that checkpoint's weights."""
    if not tracks_best(config):
        return {}
    facts: dict = {"best_checkpoint": {
        "step": state.best_global_step or None,
        "eval_loss": state.best_metric if state.best_global_step else None,
        "loaded": bool(config.load_best_model_at_end and state.best_model_checkpoint),
    }}
    if early_stop is not None:
        stopped = early_stop.stopped_at
        facts["early_stopping"] = {
            "stopped": stopped is not None,
            "stopped_at_step": stopped,
            "max_steps": state.max_steps,
            "patience": early_stop.early_stopping_patience,
            "threshold": early_stop.early_stopping_threshold,
            "reason": (f"eval loss did not improve by more than {early_stop.early_stopping_threshold} for "
                       f"{early_stop.early_stopping_patience} evaluation(s) in a row") if stopped is not None
            else "eval loss kept improving; trained to the end",
        }
    return facts
