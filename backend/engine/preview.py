"""Preview a dataset as the model sees it: samples rendered through the base model's chat template with the
trained tokens marked, and the token-length distribution against ``cutoff_len``.

Uses the very functions training uses (``load_tokenizer``, ``iter_rows``, ``tokenize_row``, truncation at
``cutoff_len``), so the preview cannot drift from what a run trains on. Every row kind previews as training
sees it: tool conversations rendered as the chat template (or the plain-text fallback) renders them, preference
rows with their chosen reply, raw-text rows as a pretraining document (every token trained, EOS last); KTO rows
labelled false are left out (supervised training sets them aside) and counted in ``rows.set_aside``.

    python -m backend.engine preview --model-dir M --data D.jsonl --cutoff 1024 [--samples 3] [--train-on-prompt]
        [--chat-template NAME]

prints one JSON object on stdout (see :func:`preview_dataset`).
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from pathlib import Path

from backend.engine.data import IGNORE_INDEX, tokenize_row
from backend.engine.rows import iter_rows

MAX_STAT_ROWS = 20_000
HISTOGRAM_BINS = 20


def load_preview_tokenizer(model_dir: str | Path, chat_template: str = "auto"):
    """The training tokenizer, plus which chat template it renders with: ``"own"``, ``"chatml fallback"`` or the
    name of the run's ``chat_template``.

    ``ensure_chat_template`` says on stdout when it falls back to ChatML; that line goes to stderr here so
    stdout stays one JSON object."""
    from backend.engine.model import load_tokenizer
    from backend.engine.named_chat_templates import apply_chat_template_name

    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        tokenizer = load_tokenizer(model_dir)
        apply_chat_template_name(tokenizer, chat_template)
    if said.getvalue():
        print(said.getvalue(), end="", file=sys.stderr, flush=True)
    if chat_template != "auto":
        return tokenizer, chat_template
    return tokenizer, ("chatml fallback" if "no chat template" in said.getvalue() else "own")


def sample_segments(tokenizer, example: dict[str, list[int]], cutoff_len: int) -> list[dict]:
    """Runs of consecutive tokens with the same trained flag (and the same side of the cutoff), decoded.

    A segment after the cutoff has ``"cut": true``: training never sees it (its ``trained`` flag says what
    it would have been)."""
    segments: list[dict] = []
    run: list[int] = []
    key: tuple[bool, bool] | None = None

    def flush() -> None:
        if run:
            text = tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            segment = {"text": text, "trained": key[0]}
            if key[1]:
                segment["cut"] = True
            segments.append(segment)

    for index, (token, label) in enumerate(zip(example["input_ids"], example["labels"])):
        token_key = (label != IGNORE_INDEX, index >= cutoff_len)
        if token_key != key:
            flush()
            run, key = [], token_key
        run.append(token)
    flush()
    return segments


def describe_sample(tokenizer, example: dict[str, list[int]], cutoff_len: int) -> dict:
    kept = example["labels"][:cutoff_len]
    return {
        "segments": sample_segments(tokenizer, example, cutoff_len),
        "num_tokens": len(example["input_ids"]),
        "num_trained": sum(1 for label in kept if label != IGNORE_INDEX),
        "truncated": len(example["input_ids"]) > cutoff_len,
    }


def _percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def length_histogram(lengths: list[int], cutoff_len: int, bins: int = HISTOGRAM_BINS) -> list[dict]:
    """About ``bins`` equal integer bins ``[from, to)`` covering every length. When the cutoff falls inside
    the range, ``cutoff_len + 1`` is a bin edge, so each bin is wholly kept or wholly truncated
    (``over_cutoff``)."""
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    start = lo
    if lo <= cutoff_len < hi:
        edge = cutoff_len + 1
        start = edge - math.ceil((edge - lo) / width) * width
    count = math.ceil((hi + 1 - start) / width)
    histogram = [{"from": start + i * width, "to": start + (i + 1) * width, "count": 0,
                  "over_cutoff": start + i * width > cutoff_len} for i in range(count)]
    for length in lengths:
        histogram[(length - start) // width]["count"] += 1
    return histogram


def length_stats(lengths: list[int], cutoff_len: int) -> dict:
    ordered = sorted(lengths)
    truncated = sum(1 for n in lengths if n > cutoff_len)
    if not ordered:
        return {"count": 0, "min": 0, "max": 0, "mean": 0.0, "p50": 0, "p95": 0, "histogram": [],
                "truncated": 0, "truncated_share": 0.0}
    return {
        "count": len(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": _percentile(ordered, 50),
        "p95": _percentile(ordered, 95),
        "histogram": length_histogram(ordered, cutoff_len),
        "truncated": truncated,
        "truncated_share": round(truncated / len(ordered), 4),
    }


def _count_rows(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def preview_dataset(model_dir: str | Path, data_path: str | Path, cutoff_len: int, samples: int = 3,
                    train_on_prompt: bool = False, max_rows: int = MAX_STAT_ROWS, tokenizer=None,
                    chat_template: str = "auto") -> dict:
    """The preview JSON: ``samples`` (first rows as trained/masked segments), ``lengths`` (over the first
    ``max_rows`` rows: min/max/mean/p50/p95, histogram, how many exceed ``cutoff_len``), ``tokenizer``
    (whose chat template rendered them) and ``rows`` (total; counted, set aside and the row kinds among the rows
    looked at; capped when not every row was looked at)."""
    template = "own"
    if tokenizer is None:
        tokenizer, template = load_preview_tokenizer(model_dir, chat_template)
    total = _count_rows(Path(data_path))
    shown: list[dict] = []
    lengths: list[int] = []
    no_target = seen = set_aside = 0
    kinds: dict[str, int] = {}
    for _, row in iter_rows(data_path):
        if len(lengths) >= max_rows:
            break
        seen += 1
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
        if not row.trainable:
            set_aside += 1
            continue
        example = tokenize_row(tokenizer, row, train_on_prompt)
        lengths.append(len(example["input_ids"]))
        if all(label == IGNORE_INDEX for label in example["labels"][:cutoff_len]):
            no_target += 1
        if len(shown) < samples:
            shown.append(describe_sample(tokenizer, example, cutoff_len))
    stats = length_stats(lengths, cutoff_len)
    stats["no_trainable_tokens"] = no_target  # dropped by training: nothing to learn within the cutoff
    return {
        "samples": shown,
        "lengths": stats,
        "rows": {"total": total, "counted": len(lengths), "capped": seen < total, "set_aside": set_aside,
                 "kinds": kinds},
        "tokenizer": {"chat_template": template, "eos_token": tokenizer.eos_token},
    }
