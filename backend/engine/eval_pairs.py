"""Evaluate a reward model (a stage-rm run) on preference pairs: pairwise accuracy and mean margin.

Each pair is tokenized exactly as stage rm trained on it (:func:`backend.engine.preference.tokenize_pair`, cut to
the run's ``cutoff_len`` by the same :func:`~backend.engine.preference.truncate`); a sequence's reward is the head's
output at its last non-padding token, as in training. **accuracy**: share of pairs whose chosen reply scores above
the rejected one; **margin**: mean r(chosen) - r(rejected).

The base side is the reward model the run started from: the base model with the freshly initialised ``score``
head, seeded with the run's seed before loading exactly as the training recipe does (so it is the run's step-0
model, not some other random head).
"""

from __future__ import annotations

from pathlib import Path

import torch

from backend.config.schema import ResolvedRun
from backend.engine.eval_progress import ProgressFile, Tick, no_tick
from backend.engine.failures import EngineError
from backend.engine.preference import tokenize_pair, truncate
from backend.engine.rows import Row

PAIR_HINT = "pick a preference dataset (chosen/rejected pairs, e.g. the built-in preference_demo)"


def pair_examples(tokenizer, rows: list[Row], cutoff_len: int) -> list[dict | None]:
    """``{"prompt_ids", "chosen_ids", "rejected_ids"}`` per row (None when a reply is empty); a row that is no
    preference pair is an EngineError naming its kind."""
    examples: list[dict | None] = []
    for number, row in enumerate(rows, start=1):
        if row.kind != "preference":
            raise EngineError(f"row {number} is a {row.kind} row; a reward model is evaluated on chosen/rejected "
                              "pairs", PAIR_HINT)
        pair = tokenize_pair(tokenizer, row)
        if pair is None:
            examples.append(None)
            continue
        prompt, (chosen, rejected), _cut = truncate(pair["prompt_ids"], [pair["chosen_ids"], pair["rejected_ids"]],
                                                    cutoff_len)
        examples.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    return examples


def pair_scores(model, pad_token_id: int, examples: list[dict | None], tick: Tick = no_tick
                ) -> list[tuple[float, float] | None]:
    """``(r(chosen), r(rejected))`` per example (None stays None); one right-padded batch of two per pair."""
    scores: list[tuple[float, float] | None] = []
    for index, example in enumerate(examples):
        tick(index, len(examples))
        if example is None:
            scores.append(None)
            continue
        sequences = [example["prompt_ids"] + example[key] for key in ("chosen_ids", "rejected_ids")]
        width = max(len(s) for s in sequences)
        ids = torch.tensor([s + [pad_token_id] * (width - len(s)) for s in sequences])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        chosen, rejected = logits[:, 0].float().tolist()
        scores.append((chosen, rejected))
    tick(len(examples), len(examples))
    return scores


def pair_metrics(scores: list[tuple[float, float] | None]) -> dict:
    scored = [s for s in scores if s is not None]
    if not scored:
        return {"accuracy": None, "margin": None, "pairs": 0}
    return {"accuracy": sum(c > r for c, r in scored) / len(scored),
            "margin": sum(c - r for c, r in scored) / len(scored), "pairs": len(scored)}


def untrained_reward_model(run: ResolvedRun, device):
    """The base model with the head the run started from (``set_seed(seed)`` then load, as the recipe does)."""
    from transformers import set_seed

    import backend.engine.stages.rm as rm

    set_seed(run.config.seed)
    model = rm.load_model(run.model_path, torch.float32)
    return model.to(device).eval()


def prediction_rows(rows: list[Row], scores, base_scores, in_training: list[bool] | None) -> list[dict]:
    out = []
    for index, (row, score) in enumerate(zip(rows, scores)):
        if score is None:
            continue
        item = {"row": index, "prompt": [{"role": m["role"], "content": m["content"]} for m in row.messages[:-1]],
                "chosen": row.messages[-1]["content"], "rejected": (row.rejected or {}).get("content", ""),
                "chosen_score": round(score[0], 6), "rejected_score": round(score[1], 6),
                "margin": round(score[0] - score[1], 6), "correct": score[0] > score[1]}
        if base_scores is not None and base_scores[index] is not None:
            base = base_scores[index]
            item.update({"base_chosen_score": round(base[0], 6), "base_rejected_score": round(base[1], 6),
                         "base_margin": round(base[0] - base[1], 6), "base_correct": base[0] > base[1]})
        if in_training is not None:
            item["in_training"] = in_training[index]
        out.append(item)
    return out


def evaluate_pairs(run_dir: Path, run: ResolvedRun, rows: list[Row], cutoff_len: int, with_base: bool,
                   in_training: list[bool] | None, out_dir: Path | None = None) -> tuple[dict, list[dict]]:
    """``(metrics, prediction rows)`` of the rm run (and its untrained start) on the preference rows."""
    from backend.engine.reward_model_score import load_reward_model

    progress = ProgressFile(out_dir, ["run:pairs", "base:pairs"] if with_base else ["run:pairs"])
    model, tokenizer = load_reward_model(run_dir)
    examples = pair_examples(tokenizer, rows, cutoff_len)
    scores = pair_scores(model, tokenizer.pad_token_id, examples, progress.phase("run:pairs"))
    device = model.device
    del model
    base_scores = None
    metrics = {**_renamed(pair_metrics(scores)), "skipped": _skipped(examples), "device": torch.device(device).type,
               "dtype": "float32"}
    if with_base:
        base = untrained_reward_model(run, device)
        base.config.pad_token_id = tokenizer.pad_token_id
        base_scores = pair_scores(base, tokenizer.pad_token_id, examples, progress.phase("base:pairs"))
        metrics["base"] = {**_renamed(pair_metrics(base_scores)), "model": run.model_path, "head": "untrained"}
        metrics["delta"] = {key: metrics[key] - metrics["base"][key] for key in ("pairwise_accuracy", "mean_margin")
                            if metrics[key] is not None and metrics["base"][key] is not None}
    return metrics, prediction_rows(rows, scores, base_scores, in_training)


def _renamed(metrics: dict) -> dict:
    return {"pairwise_accuracy": metrics["accuracy"], "mean_margin": metrics["margin"], "pairs": metrics["pairs"]}


def _skipped(examples: list[dict | None]) -> dict[str, int]:
    empty = sum(example is None for example in examples)
    return {"empty reply": empty} if empty else {}
