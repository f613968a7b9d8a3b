"""Trainer callback that appends one JSON row per log to events.jsonl and prints a progress line."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback

from backend.engine.log_lines import describe_event, describe_samples
from backend.fsio import append_jsonl

# what trl's DPO/KTO trainers log besides the loss (stages dpo, kto): implicit rewards beta * log(pi / pi_ref);
# then what its RewardTrainer logs (stage rm): the share of pairs ranked right and r(chosen) - r(rejected); then
# its GRPOTrainer (stage grpo): the mean reward (and each function's, rewards/<name>/mean), KL, reply length
REWARD_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "accuracy", "margin",
               "reward", "reward_std", "kl", "completions/mean_length")


def metric_keys(logs: dict, prefix: str = "") -> list[str]:
    """The REWARD_KEYS and per-function ``rewards/<name>/mean`` keys present in ``logs`` (with ``prefix``)."""
    return [key for key in logs if key.startswith(prefix) and (
        key[len(prefix):] in REWARD_KEYS or (key[len(prefix):].startswith("rewards/") and key.endswith("/mean")))]


def _finite_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class EventsCallback(TrainerCallback):
    """Writes ``{"step","total_steps","epoch","loss","lr","grad_norm","tokens_per_s","eta_s","time"}`` rows
    (eval rows: ``{"step","total_steps","epoch","eval_loss","time"}``), plus the ``REWARD_KEYS`` (eval rows:
    ``eval_rewards/...``, ``eval_accuracy``...) that preference and reward-model training log, and, given
    ``samples`` (stage grpo: the trainer's latest sampled replies with their rewards), a ``samples`` list in each
    training row for the Runs card. Only the main process writes."""

    def __init__(self, events_path: Path, samples: Callable[[], list[dict]] | None = None):
        self.events_path = Path(events_path)
        self.samples = samples
        self.train_loss: float | None = None
        self._start: float | None = None
        self._last_time: float | None = None
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = self._last_time = time.time()
        self._last_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "train_loss" in logs:
            self.train_loss = _finite_or_none(logs["train_loss"])
        if not state.is_world_process_zero:
            return
        if "loss" in logs:
            row = self._train_row(state, logs)
        elif "eval_loss" in logs:
            row = {
                "step": state.global_step,
                "total_steps": state.max_steps,
                "epoch": _finite_or_none(state.epoch),
                "eval_loss": _finite_or_none(logs["eval_loss"]),
                **{key: _finite_or_none(logs[key]) for key in metric_keys(logs, "eval_")},
                "time": time.time(),
            }
            self._last_time = row["time"]  # keep evaluation time out of the next tokens/s window
        else:
            return
        append_jsonl(self.events_path, row)
        print("\n".join([describe_event(row), *describe_samples(row.get("samples") or [])]), flush=True)

    def _train_row(self, state, logs: dict) -> dict:
        now = time.time()
        elapsed = now - (self._start or now)
        window = max(now - (self._last_time or now), 1e-9)
        tokens = state.num_input_tokens_seen - self._last_tokens
        self._last_time, self._last_tokens = now, state.num_input_tokens_seen
        step = state.global_step
        eta = elapsed / step * (state.max_steps - step) if step else None
        row = {
            "step": step,
            "total_steps": state.max_steps,
            "epoch": _finite_or_none(state.epoch),
            "loss": _finite_or_none(logs.get("loss")),
            "lr": _finite_or_none(logs.get("learning_rate")),
            "grad_norm": _finite_or_none(logs.get("grad_norm")),
            "tokens_per_s": round(tokens / window, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
            **{key: _finite_or_none(logs[key]) for key in metric_keys(logs)},
            "time": now,
        }
        if self.samples is not None and (samples := self.samples()):
            row["samples"] = samples
        if torch.cuda.is_available():
            row["gpu_mem"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        return row


class StopRequestCallback(TrainerCallback):
    """"Stop & save": when ``stop_file`` appears (POST /jobs/{id}/stop writes it), training ends after the current
    optimizer step and the run saves its adapter/model as usual, instead of being killed.

    Every process must stop at the same step: under several processes the flag is all-reduced (MAX), so the
    file check is one tiny collective per step; a single process only looks at the file."""

    def __init__(self, stop_file: Path):
        self.stop_file = Path(stop_file)
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        requested = self.stop_file.exists()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1.0 if requested else 0.0], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            requested = bool(flag.item())
        if requested and state.global_step < state.max_steps:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = False  # the final output is saved by the recipe; no extra checkpoint
            if state.is_world_process_zero:
                print(f"stop requested: training ends at step {state.global_step} of {state.max_steps}; saving what "
                      "was trained so far", flush=True)
        return control
