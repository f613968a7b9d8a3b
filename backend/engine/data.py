"""Build the training data: normalized messages JSONL -> token ids + labels (-100 where no loss).

Loss mask by our own code (backend.engine.templates.find_assistant_spans): only assistant turns carry
loss, or every token when ``train_on_prompt``. The text is tokenized piece by piece at the span borders,
so a label never straddles a prompt/answer boundary.

Stage ``pt`` (continued pretraining): each conversation is one plain-text document (its message contents
joined by blank lines, no chat template), documents are joined with EOS into one token stream and cut into
``cutoff_len`` blocks; every token carries loss.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from backend.config.schema import ResolvedRun
from backend.engine.failures import DataError
from backend.engine.templates import find_assistant_spans

IGNORE_INDEX = -100
_ROLES = {"system", "user", "assistant"}


@dataclass
class DataStats:
    read: int = 0
    kept: int = 0
    dropped_no_target: int = 0
    truncated: int = 0
    train: int = 0
    eval: int = 0

    def describe(self) -> str:
        return (
            f"data: {self.read} conversations read, {self.kept} kept "
            f"({self.dropped_no_target} dropped with no trainable tokens, {self.truncated} truncated); "
            f"{self.train} train / {self.eval} eval"
        )


def read_conversations(path: str | Path, max_samples: int | None = None) -> list[list[dict]]:
    """Read ``{"messages": [...]}`` lines; a malformed line is a DataError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}", "re-register the dataset; its normalized file is missing")
    conversations: list[list[dict]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                conversations.append(_parse_line(line, path, number))
                if max_samples is not None and len(conversations) >= max_samples:
                    break
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name} is not UTF-8 text ({exc})", "re-register the dataset as UTF-8 JSONL") from exc
    return conversations


def _parse_line(line: str, path: Path, number: int) -> list[dict]:
    hint = "each line must be {\"messages\": [{\"role\": \"user\"|\"assistant\"|\"system\", \"content\": str}, ...]}"
    try:
        messages = json.loads(line)["messages"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path.name} line {number}: not a messages object ({exc})", hint) from exc
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str) for m in messages
    ):
        raise DataError(f"{path.name} line {number}: bad messages list", hint)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def tokenize_conversation(tokenizer, messages: list[dict], train_on_prompt: bool = False) -> dict[str, list[int]]:
    """Token ids of the rendered conversation and labels that are -100 outside assistant turns."""
    text, spans = find_assistant_spans(tokenizer, messages)
    borders = sorted({0, len(text), *(pos for span in spans for pos in span)})
    input_ids: list[int] = []
    labels: list[int] = []
    for start, end in zip(borders, borders[1:]):
        ids = tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
        trainable = train_on_prompt or any(s <= start and end <= e for s, e in spans)
        input_ids.extend(ids)
        labels.extend(ids if trainable else [IGNORE_INDEX] * len(ids))
    return {"input_ids": input_ids, "labels": labels}


def document_text(messages: list[dict]) -> str:
    """A conversation as a plain-text document: its non-empty contents, joined by blank lines."""
    return "\n\n".join(m["content"] for m in messages if m["content"].strip())


def build_pretraining_blocks(run: ResolvedRun, tokenizer, stats: DataStats) -> list[dict[str, list[int]]]:
    """Every document + EOS in one stream, cut into cutoff_len blocks whose labels are their input ids."""
    if tokenizer.eos_token_id is None:
        raise DataError("stage pt needs a tokenizer with an eos token to separate documents",
                        "use a base model whose tokenizer defines eos_token, or stage sft")
    stream: list[int] = []
    for ref in run.datasets:
        for messages in read_conversations(ref.path, run.config.max_samples):
            stats.read += 1
            text = document_text(messages)
            if text:
                stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    size = run.config.cutoff_len
    blocks = [stream[i: i + size] for i in range(0, len(stream), size)]
    examples = [{"input_ids": block, "labels": list(block)} for block in blocks if len(block) > 1]
    stats.kept = len(examples)
    return examples


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> list[dict[str, list[int]]]:
    """Tokenize every dataset of the run, truncate to cutoff_len and drop examples with nothing to learn."""
    config = run.config
    if config.stage == "pt":
        return build_pretraining_blocks(run, tokenizer, stats)
    examples = []
    for ref in run.datasets:
        for messages in read_conversations(ref.path, config.max_samples):
            stats.read += 1
            example = tokenize_conversation(tokenizer, messages, config.train_on_prompt)
            if len(example["input_ids"]) > config.cutoff_len:
                stats.truncated += 1
                example = {key: value[: config.cutoff_len] for key, value in example.items()}
            if all(label == IGNORE_INDEX for label in example["labels"]):
                stats.dropped_no_target += 1
                continue
            examples.append(example)
    stats.kept = len(examples)
    return examples


def split_examples(examples: list, val_size: float, seed: int) -> tuple[list, list]:
    """Hold out ``val_size`` of the examples (at least one when val_size > 0) for the eval loss."""
    if val_size <= 0 or len(examples) < 2:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(examples) - 1, max(1, round(len(examples) * val_size)))
    held_out = set(order[:n_eval])
    train = [ex for i, ex in enumerate(examples) if i not in held_out]
    return train, [examples[i] for i in sorted(held_out)]


def build_datasets(run: ResolvedRun, tokenizer):
    """Return ``(train_dataset, eval_dataset_or_None, stats)`` as pre-tokenized ``datasets.Dataset``s."""
    from datasets import Dataset

    if not run.datasets:
        raise DataError("the run has no datasets", "pick at least one registered dataset")
    stats = DataStats()
    examples = build_examples(run, tokenizer, stats)
    if not examples:
        raise DataError(
            f"no usable examples: {stats.read} read, {stats.dropped_no_target} had no assistant tokens "
            f"within cutoff_len={run.config.cutoff_len}",
            "check the dataset has assistant turns, raise cutoff_len, or enable train_on_prompt",
        )
    train, held_out = split_examples(examples, run.config.val_size, run.config.seed)
    stats.train, stats.eval = len(train), len(held_out)
    eval_dataset = Dataset.from_list(held_out) if held_out else None
    return Dataset.from_list(train), eval_dataset, stats
