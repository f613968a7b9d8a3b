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
OUTLIER_PERCENTILE = 99  # the chart ends here when the longest rows lie far beyond it (OUTLIER_FACTOR times)
OUTLIER_FACTOR = 1.5
NAMED_ROWS = 20  # rows named in the preview (dropped ones, the longest truncated ones)


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


def length_histogram(lengths: list[int], cutoff_len: int, bins: int = HISTOGRAM_BINS,
                     top: int | None = None) -> list[dict]:
    """About ``bins`` equal integer bins ``[from, to)`` covering every length (and up to ``top``). When the cutoff falls inside
    the range, ``cutoff_len + 1`` is a bin edge, so each bin is wholly kept or wholly truncated
    (``over_cutoff``). The first bin never starts below 0 (it is narrower then)."""
    if not lengths:
        return []
    lo, hi = min(lengths), max(max(lengths), top or 0)
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
    histogram[0]["from"] = max(0, histogram[0]["from"])
    return histogram


def chart_top(ordered: list[int], cutoff_len: int) -> int:
    """The longest length the histogram draws: the longest sample, unless a few outliers lie far beyond the
    99th percentile (then that percentile, stretched to show the cutoff line when it lies within twice that), so
    one outlier cannot squash every other sample into the first bar."""
    top = _percentile(ordered, OUTLIER_PERCENTILE)
    if ordered[-1] <= OUTLIER_FACTOR * top:
        return ordered[-1]
    return cutoff_len + 1 if top < cutoff_len + 1 <= 2 * top else top


def length_stats(lengths: list[int], cutoff_len: int) -> dict:
    """min/max/mean/p50/p95, the histogram (``longer_than``: the outliers it leaves out, or None) and how many
    lengths exceed ``cutoff_len``."""
    ordered = sorted(lengths)
    truncated = sum(1 for n in lengths if n > cutoff_len)
    if not ordered:
        return {"count": 0, "min": 0, "max": 0, "mean": 0.0, "p50": 0, "p95": 0, "histogram": [],
                "longer_than": None, "truncated": 0, "truncated_share": 0.0}
    top = chart_top(ordered, cutoff_len)
    drawn = [n for n in ordered if n <= top]
    left_out = len(ordered) - len(drawn)
    return {
        "count": len(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": _percentile(ordered, 50),
        "p95": _percentile(ordered, 95),
        "histogram": length_histogram(drawn, cutoff_len, top=top),
        "longer_than": {"tokens": top, "count": left_out} if left_out else None,
        "truncated": truncated,
        "truncated_share": round(truncated / len(ordered), 4),
    }


def _count_rows(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def dropped_reason(labels: list[int]) -> str:
    """Why training drops a row with no trained token within the cutoff: ``"cutoff"`` (its reply starts past
    the cutoff: the prompt fills it) or ``"no_reply"`` (nothing in it is trained at any length)."""
    return "cutoff" if any(label != IGNORE_INDEX for label in labels) else "no_reply"


def named_rows(measured: list[tuple[int, int]], dropped: list[dict], cutoff_len: int) -> dict:
    """The rows the preview names: ``dropped_rows`` (``{row, tokens, reason}``, the first ``NAMED_ROWS``) and
    ``longest_truncated`` (``{row, tokens}`` of the longest rows over the cutoff, longest first). ``row`` is
    the line of the dataset's normalized data.jsonl (1-based), as the Download button gives it."""
    over = sorted((pair for pair in measured if pair[1] > cutoff_len), key=lambda pair: (-pair[1], pair[0]))
    return {"dropped_rows": dropped[:NAMED_ROWS],
            "longest_truncated": [{"row": row, "tokens": tokens} for row, tokens in over[:NAMED_ROWS]]}


def preview_dataset(model_dir: str | Path, data_path: str | Path, cutoff_len: int, samples: int = 3,
                    train_on_prompt: bool = False, max_rows: int = MAX_STAT_ROWS, tokenizer=None,
                    chat_template: str = "auto") -> dict:
    """The preview JSON: ``samples`` (first rows as trained/masked segments), ``lengths`` (over the first
    ``max_rows`` rows: min/max/mean/p50/p95, histogram, how many exceed ``cutoff_len``, and which rows training
    drops or truncates, see :func:`named_rows`), ``tokenizer`` (whose chat template rendered them) and ``rows``
    (total; counted, set aside and the row kinds among the rows looked at; capped when not every row was looked
    at)."""
    template = "own"
    if tokenizer is None:
        tokenizer, template = load_preview_tokenizer(model_dir, chat_template)
    total = _count_rows(Path(data_path))
    shown: list[dict] = []
    measured: list[tuple[int, int]] = []  # (row, tokens)
    dropped: list[dict] = []
    seen = set_aside = 0
    kinds: dict[str, int] = {}
    for number, row in iter_rows(data_path):
        if len(measured) >= max_rows:
            break
        seen += 1
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
        if not row.trainable:
            set_aside += 1
            continue
        example = tokenize_row(tokenizer, row, train_on_prompt)
        measured.append((number, len(example["input_ids"])))
        if all(label == IGNORE_INDEX for label in example["labels"][:cutoff_len]):
            dropped.append({"row": number, "tokens": len(example["input_ids"]),
                            "reason": dropped_reason(example["labels"])})
        if len(shown) < samples:
            shown.append(describe_sample(tokenizer, example, cutoff_len))
    stats = length_stats([tokens for _, tokens in measured], cutoff_len)
    stats["no_trainable_tokens"] = len(dropped)  # dropped by training: nothing to learn within the cutoff
    stats.update(named_rows(measured, dropped, cutoff_len))
    return {
        "samples": shown,
        "lengths": stats,
        "rows": {"total": total, "counted": len(measured), "capped": seen < total, "set_aside": set_aside,
                 "kinds": kinds},
        "tokenizer": {"chat_template": template, "eos_token": tokenizer.eos_token},
    }
