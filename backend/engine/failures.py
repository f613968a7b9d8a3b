"""Turn any exception from a run into a one-line error plus a concrete hint for result.json."""

from __future__ import annotations

import errno

OOM_HINT = (
    "reduce per_device_batch_size / batch_tokens / cutoff_len, enable gradient_checkpointing, or use QLoRA "
    "(or DeepSpeed ZeRO-3 with CPU offload for full fine-tuning); the run log's 'memory plan' line shows the estimate"
)


class EngineError(RuntimeError):
    """A failure we understand: carries the hint to show the user."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


class DataError(EngineError):
    """The dataset cannot be used as given (missing file, bad JSON, no trainable tokens...)."""


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is always there in the engine
        pass
    text = str(exc).lower()
    return "out of memory" in text and ("cuda" in text or "hip" in text or "mps" in text)


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """Return ``(error, hint)``: a one-line description and what the user should do about it."""
    message = _one_line(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, EngineError):
        return _one_line(str(exc)), exc.hint
    if _is_oom(exc):
        return message, OOM_HINT
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return message, "the disk is full: free space under the run directory (old runs, checkpoints, merged exports)"
    if isinstance(exc, ImportError) and "bitsandbytes" in str(exc).lower():
        return message, "QLoRA and 8-bit optimizers need bitsandbytes: pip install bitsandbytes, or use method lora"
    if isinstance(exc, FileNotFoundError):
        return message, "a path in run.yaml does not exist; check the base model and dataset paths"
    if isinstance(exc, (UnicodeDecodeError, ValueError)) and "json" in str(exc).lower():
        return message, "the dataset is not valid normalized JSONL; re-register it through the datasets page"
    return message, "see stdout.log in the run directory for the full traceback"
