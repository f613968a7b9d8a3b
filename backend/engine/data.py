"""Read the rows a run trains and evaluates on, and tokenize conversations the way every stage sees them.

Rows (every kind: chat, tools, preference, KTO, raw text) are parsed by :mod:`backend.engine.rows`; which rows
of which dataset are trained and evaluated on is decided by :mod:`backend.engine.mixture` (weights, caps,
held-out share or separate validation datasets), deterministically from the seed: :func:`read_mixture`. The
stages (:mod:`backend.engine.stages`) turn the mixed rows into their examples; the log says how many examples
each dataset gave.

Conversations are rendered with the chat template and tokenized piece by piece at the assistant-span borders
(:func:`tokenize_conversation`, masking by :func:`backend.engine.chat_render.find_assistant_spans`), so a label
never straddles a prompt/answer boundary: only assistant turns (tool calls included) carry loss, or every token
with ``train_on_prompt``. Raw text is only read by stage ``pt``; KTO rows labelled false only by the stages that
learn from undesirable replies (``STAGES_KEEPING_UNDESIRABLE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from backend.config.schema import DatasetRef, ResolvedRun
from backend.engine.chat_render import find_assistant_spans, prepare_tool_conversation
from backend.engine.failures import DataError
from backend.engine.mixture import mix, split_examples
from backend.engine.rows import Row, iter_rows

__all__ = ["IGNORE_INDEX", "DataStats", "Mixture", "SourceStats", "load_rows", "read_mixture", "split_examples",
           "tokenize_conversation", "tokenize_row"]

IGNORE_INDEX = -100
KIND_NOTES = {  # (stage, dataset kind) -> what that stage takes from it
    ("sft", "preference"): "SFT trains on the chosen reply; the rejected one is not used",
    ("sft", "kto"): "SFT trains on the rows labelled true only",
    ("kto", "preference"): "KTO: each pair gives a desirable (chosen) and an undesirable (rejected) example",
}
EXAMPLE_UNITS = {"pt": "documents", "dpo": "pairs", "rm": "pairs"}  # what a stage's examples are, for the log
STAGES_KEEPING_UNDESIRABLE = ("dpo", "kto", "rm")  # they learn from KTO rows labelled false / rejected replies


@dataclass
class SourceStats:
    """What one dataset gave: rows read, set aside, held out, drawn into the mixture, final examples."""

    name: str
    role: str = "train"  # or "eval" (a validation dataset)
    unit: str = "examples"  # "documents" in stage pt (packed into blocks afterwards), "pairs" in stage dpo
    stage: str = "sft"
    kinds: dict[str, int] = field(default_factory=dict)
    read: int = 0
    set_aside: int = 0  # KTO rows labelled false
    held_out: int = 0
    weight: float | None = None
    drawn: int = 0
    examples: int = 0
    eval_examples: int = 0

    def describe(self, total_weight: float | None) -> str:
        kind = max(self.kinds, key=self.kinds.get) if self.kinds else "empty"
        parts = [f"{self.read} rows read"]
        if self.set_aside:
            parts.append(f"{self.set_aside} labelled false set aside")
        if self.held_out:
            parts.append(f"{self.held_out} held out")
        if self.weight is not None and total_weight:
            parts.append(f"weight {self.weight:g} ({self.weight / total_weight:.0%}): {self.drawn} drawn")
        result = (f"{self.eval_examples} eval {self.unit}" if self.role == "eval"
                  else f"{self.examples} train {self.unit}")
        if self.role == "train" and self.eval_examples:
            result += f" + {self.eval_examples} eval"
        note = f" [{KIND_NOTES[self.stage, kind]}]" if (self.stage, kind) in KIND_NOTES else ""
        label = "validation dataset" if self.role == "eval" else "dataset"
        return f"data: {label} {self.name} ({kind}): {', '.join(parts)} -> {result}{note}"


@dataclass
class DataStats:
    read: int = 0
    kept: int = 0
    dropped_no_target: int = 0
    truncated: int = 0
    train: int = 0
    eval: int = 0
    sources: list[SourceStats] = field(default_factory=list)

    def describe(self) -> str:
        weights = [s.weight for s in self.sources if s.role == "train" and s.weight is not None]
        lines = [s.describe(sum(weights) if weights else None) for s in self.sources]
        lines.append(
            f"data: {self.read} rows read, {self.kept} examples kept "
            f"({self.dropped_no_target} dropped with no trainable tokens, {self.truncated} truncated); "
            f"{self.train} train / {self.eval} eval"
        )
        return "\n".join(lines)


def load_rows(ref: DatasetRef, stage: str, max_samples: int | None, source: SourceStats) -> list[Row]:
    """The first ``max_samples`` usable rows of a dataset, counted into ``source``."""
    rows: list[Row] = []
    for number, row in iter_rows(ref.path):
        if row.text is not None and stage != "pt":
            raise DataError(f"dataset {ref.name!r} holds raw text ({Path(ref.path).name} line {number} is "
                            f'{{"text": ...}}); stage {stage} trains on conversations',
                            "use stage pt (continued pretraining) for raw-text datasets, or pick a chat dataset")
        source.read += 1
        source.kinds[row.kind] = source.kinds.get(row.kind, 0) + 1
        if not row.trainable and stage not in STAGES_KEEPING_UNDESIRABLE:
            source.set_aside += 1
            continue
        rows.append(row)
        if max_samples is not None and len(rows) >= max_samples:
            break
    return rows


def tokenize_conversation(tokenizer, messages: list[dict], train_on_prompt: bool = False,
                          tools: list[dict] | None = None) -> dict[str, list[int]]:
    """Token ids of the rendered conversation and labels that are -100 outside assistant turns."""
    messages, tools = prepare_tool_conversation(tokenizer, messages, tools)
    text, spans = find_assistant_spans(tokenizer, messages, tools)
    borders = sorted({0, len(text), *(pos for span in spans for pos in span)})
    input_ids: list[int] = []
    labels: list[int] = []
    for start, end in pairwise(borders):
        ids = tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
        trainable = train_on_prompt or any(s <= start and end <= e for s, e in spans)
        input_ids.extend(ids)
        labels.extend(ids if trainable else [IGNORE_INDEX] * len(ids))
    return {"input_ids": input_ids, "labels": labels}


def tokenize_row(tokenizer, row: Row, train_on_prompt: bool = False) -> dict[str, list[int]]:
    """A row as supervised training sees it; a raw-text row as one document (every token trained, EOS last)."""
    if row.text is not None:
        ids = tokenizer(row.text, add_special_tokens=False)["input_ids"]
        ids += [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        return {"input_ids": ids, "labels": list(ids)}
    return tokenize_conversation(tokenizer, row.messages, train_on_prompt, row.tools)


@dataclass
class Mixture:
    """The rows of a run: ``train`` (mixed, in training order) and ``eval`` (held out or from validation
    datasets), each as ``(source index, row)`` so the stages count their examples into ``sources``."""

    train: list[tuple[int, Row]]
    eval: list[tuple[int, Row]]
    sources: list[SourceStats]

    def count(self, index: int, examples: int, evaluation: bool) -> None:
        if evaluation:
            self.sources[index].eval_examples += examples
        else:
            self.sources[index].examples += examples


def read_mixture(run: ResolvedRun, stats: DataStats) -> Mixture:
    """Read every dataset, hold out or read the validation rows, mix the training rows (counted into ``stats``)."""
    config = run.config
    unit = EXAMPLE_UNITS.get(config.stage, "examples")
    sources = [SourceStats(name=f"{ref.name!r} ({ref.id})", weight=ref.weight, unit=unit, stage=config.stage)
               for ref in run.datasets]
    train_rows: list[list[Row]] = []
    eval_rows: list[tuple[int, Row]] = []
    for index, (ref, source) in enumerate(zip(run.datasets, sources)):
        cap = ref.max_samples if ref.max_samples is not None else config.max_samples
        rows = load_rows(ref, config.stage, cap, source)
        rows, held_out = split_examples(rows, config.val_size, f"split:{config.seed}:{ref.id}")
        source.held_out = len(held_out)
        train_rows.append(rows)
        eval_rows += [(index, row) for row in held_out]
    for ref in run.val_datasets:
        source = SourceStats(name=f"{ref.name!r} ({ref.id})", role="eval", unit=unit, stage=config.stage)
        sources.append(source)
        cap = ref.max_samples if ref.max_samples is not None else config.max_samples
        eval_rows += [(len(sources) - 1, row) for row in load_rows(ref, config.stage, cap, source)]
    stats.sources = sources
    stats.read = sum(s.read for s in sources)

    weights = [ref.weight for ref in run.datasets]
    weighted = any(w is not None for w in weights)
    if weighted:
        empty = [s.name for s, rows, w in zip(sources, train_rows, weights) if w and not rows]
        if empty and config.mixture_size is None:
            raise DataError(f"dataset {empty[0]} has a weight but no usable rows, so a mixture without repeats "
                            "would be empty", "give it weight 0, remove it from the run, or set mixture_size")
    mixed, counts = mix(train_rows, [w or 0.0 for w in weights] if weighted else None, config.mixture_size,
                        config.seed)
    for source, count in zip(sources, counts):
        source.drawn = count
    return Mixture(train=mixed, eval=eval_rows, sources=sources)
