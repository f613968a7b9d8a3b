"""Pure helpers of the GPU harnesses: FLOP and MFU arithmetic, throughput over a step window, markdown tables."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

# H100 SXM dense bf16 peak from NVIDIA's datasheet (989.4 TFLOP/s without sparsity). Issue 5 quotes 790 TFLOP/s,
# which is what a large bf16 matrix product reaches on the lent H100/H200 (KINDS.md: 769-798): MFU against that
# is 989/790 = 1.25x the figure printed here. --peak-tflops picks another denominator.
H100_BF16_DENSE_TFLOPS = 989.4


def flops_per_token(n_flop_params: int, method: str) -> float:
    """Training FLOP per token: full fine-tuning ~6N (forward 2N, backward 4N: input and weight gradients);
    LoRA/QLoRA/freeze ~4N (the frozen weights need input gradients only). Adapter weights, attention scores and
    recomputation under activation checkpointing are not counted (model FLOPs, not hardware FLOPs)."""
    return (6 if method == "full" else 4) * n_flop_params


def mfu(tokens_per_s: float | None, n_flop_params: int, method: str,
        peak_tflops: float = H100_BF16_DENSE_TFLOPS) -> float | None:
    """Model-FLOPs utilisation as a fraction of ``peak_tflops``."""
    if tokens_per_s is None or not math.isfinite(tokens_per_s):
        return None
    return tokens_per_s * flops_per_token(n_flop_params, method) / (peak_tflops * 1e12)


def window_throughput(samples: Sequence[tuple[float, float]], skip: int) -> tuple[float | None, float, int]:
    """``(tokens/s, tokens, steps)`` between sample ``skip`` and the last; ``samples`` are ``(time, cumulative
    tokens)`` after each step. The steps before ``skip`` (compilation, autotuning, allocator growth) are left out."""
    if len(samples) < 2:
        return None, 0.0, 0
    skip = min(max(skip, 0), len(samples) - 2)
    (t0, n0), (t1, n1) = samples[skip], samples[-1]
    if t1 <= t0:
        return None, n1 - n0, len(samples) - 1 - skip
    return (n1 - n0) / (t1 - t0), n1 - n0, len(samples) - 1 - skip


def samples_from_events(rows: Iterable[dict]) -> list[tuple[float, float]]:
    """The engine's events.jsonl train rows -> ``(time, cumulative tokens)``. Each row's tokens_per_s covers the
    time since the previous row, so tokens = tokens_per_s x that gap (the first row's window is unknown: 0)."""
    samples: list[tuple[float, float]] = []
    for row in rows:
        if "tokens_per_s" not in row:  # eval rows
            continue
        if samples:
            t_prev, n_prev = samples[-1]
            samples.append((row["time"], n_prev + row.get("tokens_per_s", 0.0) * (row["time"] - t_prev)))
        else:
            samples.append((row["time"], 0.0))
    return samples


def rel_diff(a: float | None, b: float | None) -> float | None:
    """|a - b| / |b|, or None when either is missing."""
    if a is None or b is None or b == 0:
        return None
    return abs(a - b) / abs(b)


def fmt(value, spec: str = ",.0f", missing: str = "—") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, str):
        return value
    return format(value, spec)


def pct(value: float | None, digits: int = 1) -> str:
    return fmt(None if value is None else value * 100, f".{digits}f") + ("" if value is None else " %")


def render_table(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub markdown table; cells are str()-ed and pipes escaped."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} cells, the table {len(columns)} columns: {row}")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def append_markdown(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
