"""What the engine prints to a run's log (stdout.log) about its progress and its result: readable lines with
rounded numbers (``loss 2.346``, not ``loss 2.3456789012345678``) and ``key=value`` text instead of a Python dict.
Pure functions (no torch), so the Runs page's log reads the same whatever wrote the numbers."""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 4  # digits kept of a loss, a norm, a reward...
# what the progress line names besides loss and lr: (events.jsonl key, word in the log)
REWARD_WORDS = (("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy"),
                ("margin", "reward margin"), ("accuracy", "reward accuracy"), ("reward", "reward mean"))


def fmt_number(value: Any, digits: int = SIGNIFICANT) -> str:
    """A number as the log shows it: integers as they are, floats to ``digits`` significant digits ('-' for
    None, 'nan'/'inf' as such); anything else as its text."""
    if value is None:
        return "-"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def fmt_lr(value: Any) -> str:
    """A learning rate: ``1.00e-04`` (they span orders of magnitude, so always in scientific notation)."""
    return f"{value:.2e}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def describe_event(row: dict[str, Any]) -> str:
    """The progress line of one events.jsonl row: ``step 3/10 epoch 0.30 loss 2.346 lr 1.00e-04 grad_norm 1.235
    120 tok/s eta 12s`` (an eval row: ``step 3/10 epoch 0.30 eval_loss 2.401``)."""
    head = f"step {row.get('step')}/{row.get('total_steps')} epoch {row.get('epoch') or 0:.2f}"
    if "eval_loss" in row:
        return f"{head} eval_loss {fmt_number(row.get('eval_loss'))}"
    parts = [head, f"loss {fmt_number(row.get('loss'))}", f"lr {fmt_lr(row.get('lr'))}",
             f"grad_norm {fmt_number(row.get('grad_norm'))}"]
    parts += [f"{word} {fmt_number(row[key])}" for key, word in REWARD_WORDS if row.get(key) is not None]
    if row.get("gpu_mem") is not None:
        parts.append(f"gpu_mem {fmt_number(row['gpu_mem'])} GiB")
    if row.get("tokens_per_s") is not None:
        parts.append(f"{row['tokens_per_s']:.0f} tok/s")
    eta = row.get("eta_s")
    parts.append(f"eta {eta:.0f}s" if isinstance(eta, (int, float)) else "eta -")
    return " ".join(parts)


def _flat_items(value: Any, prefix: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for key, sub in value.items() if sub is not None
                for item in _flat_items(sub, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(value, (list, tuple)):
        return [(prefix, ",".join(fmt_number(v) for v in value))]
    return [(prefix, fmt_number(value))]


def describe_result(status: str, result: dict[str, Any]) -> str:
    """The last line of a run's log: ``succeeded: output=adapter train_loss=2.31 runtime_s=12.3 precision=bf16
    memory_plan.fits=True ...`` (nested facts as ``key.sub=value``; None values left out)."""
    text = " ".join(f"{key}={value}" for key, value in _flat_items(result, ""))
    return f"{status}: {text}" if text else f"{status}:"


SAMPLES_PER_STEP = 2  # sampled replies (stage grpo) kept in each training row of events.jsonl
SAMPLE_CHARS = 200  # of each prompt and reply: a row stays small (the stall watchdog reads the file's tail)


def clip_text(text: str, chars: int = SAMPLE_CHARS) -> str:
    """``text`` cut to ``chars`` characters (ending in '…' when cut); leading spaces kept (a reward may hinge on
    them), trailing ones dropped."""
    text = text.rstrip()
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def turn_text(value: Any) -> str:
    """The text of a prompt or a reply as trl keeps it: a string, or a list of messages (a prompt's last turn, a
    reply's contents joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, dict) for m in value):
        if value[-1].get("role") == "assistant":
            return "".join(str(m.get("content") or "") for m in value)
        return str(value[-1].get("content") or "")
    return str(value)


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return round(float(value), 4)
    return None


def latest_samples(prompts: list, completions: list, rewards: dict[str, list], weights: list[float],
                   limit: int = SAMPLES_PER_STEP) -> list[dict[str, Any]]:
    """The last ``limit`` sampled replies with their prompt (its last turn), each reward function's score and the
    weighted total (None where no function scored it), clipped: ``[{"prompt", "completion", "rewards": {name:
    score}, "reward"}]``."""
    count = min(len(prompts), len(completions), *(len(scores) for scores in rewards.values()))
    samples = []
    for index in range(max(count - limit, 0), count):
        scores = {name: _finite(values[index]) for name, values in rewards.items()}
        weighted = [w * s for w, s in zip(weights, scores.values(), strict=False) if s is not None]
        samples.append({"prompt": clip_text(turn_text(prompts[index])),
                        "completion": clip_text(turn_text(completions[index])),
                        "rewards": scores, "reward": round(sum(weighted), 4) if weighted else None})
    return samples


def describe_samples(samples: list[dict[str, Any]]) -> list[str]:
    """The log lines of a row's sampled replies (stage grpo), the same ones the Runs card shows: ``  sample 1:
    'What is 3 plus 3?' -> ' six' reward 1 (regex 1, length 0.5)``."""
    lines = []
    for number, sample in enumerate(samples, 1):
        scores = ", ".join(f"{name} {fmt_number(score)}" for name, score in (sample.get("rewards") or {}).items())
        lines.append(f"  sample {number}: {sample.get('prompt')!r} -> {sample.get('completion')!r} reward "
                     f"{fmt_number(sample.get('reward'))}" + (f" ({scores})" if scores else ""))
    return lines
