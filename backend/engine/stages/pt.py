"""Stage ``pt``: continued pretraining on plain text, every token carries loss.

Each row is one document (its text, or its message contents joined by blank lines, no chat template); the
documents are joined with EOS into one token stream and cut into ``cutoff_len`` blocks whose labels are their
input ids. The trainer is stage sft's (its examples are blocks instead of conversations).
"""

from __future__ import annotations

from backend.config.schema import ResolvedRun
from backend.engine.data import DataStats, Mixture, read_mixture
from backend.engine.failures import DataError
from backend.engine.rows import Row, document_text
from backend.engine.stages.sft import build_trainer, load_model, sequence_lengths

__all__ = ["build_examples", "build_trainer", "load_model", "pretraining_blocks", "sequence_lengths"]


def build_examples(run: ResolvedRun, tokenizer, stats: DataStats) -> tuple[list[dict], list[dict]]:
    mixture = read_mixture(run, stats)
    cutoff = run.config.cutoff_len
    return (pretraining_blocks(mixture.train, tokenizer, cutoff, mixture),
            pretraining_blocks(mixture.eval, tokenizer, cutoff, mixture, evaluation=True))


def pretraining_blocks(rows: list[tuple[int, Row]], tokenizer, cutoff_len: int, mixture: Mixture,
                       evaluation: bool = False) -> list[dict[str, list[int]]]:
    """Every document + EOS in one stream, cut into cutoff_len blocks whose labels are their input ids."""
    if tokenizer.eos_token_id is None:
        raise DataError("stage pt needs a tokenizer with an eos token to separate documents",
                        "use a base model whose tokenizer defines eos_token, or stage sft")
    stream: list[int] = []
    for index, row in rows:
        text = document_text(row)
        if text:
            stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            mixture.count(index, 1, evaluation)  # documents, for pt
    blocks = [stream[i: i + cutoff_len] for i in range(0, len(stream), cutoff_len)]
    return [{"input_ids": block, "labels": list(block)} for block in blocks if len(block) > 1]
