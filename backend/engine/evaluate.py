"""Evaluate a model (a base model, a run's adapter or trained model) on a dataset: loss, perplexity, predictions.

    python -m backend.engine evaluate --run-dir D --dataset-path P --out DIR [--max-samples N] [--max-new-tokens M]
    python -m backend.engine evaluate --model-dir M [--adapter-dir A] --dataset-path P --out DIR [...]

What it measures, on the first ``max_samples`` usable rows of the dataset (KTO rows labelled false left out, as
supervised training does):

- **loss**: the mean negative log-likelihood per trained token, over every trained token of every row, with the
  training code's own tokenization and loss mask (:func:`backend.engine.data.tokenize_row`: assistant turns only,
  raw text all tokens; cut at ``cutoff_len``); **perplexity** = exp(loss). The mask is the one of
  ``train_on_prompt: false`` for every model, so a base model and its fine-tuned runs are scored alike.
- **predictions**: for each conversation, the greedy reply to every turn before its last assistant turn, through
  the chat template with the generation prompt (the same code the chat worker uses); ``predictions.jsonl`` holds
  ``{"prompt": [...], "reference": str, "prediction": str, "exact_match": bool, "rouge_l": float,
  "trimmed_turns": int}`` rows (turns dropped from a prompt longer than the model's context, as in chat).
  Raw-text rows and tool conversations rendered in the template's native tool layout get no prediction
  (counted in ``skipped``).
- **exact_match**: share of predictions equal to the reference after collapsing whitespace; **rouge_l**: mean
  ROUGE-L F1 over lowercased word tokens (CJK characters count as one token each); **bleu**: corpus BLEU-4 by
  sacrebleu (its default 13a tokenization). All three are fractions in [0, 1].

``metrics.json`` and ``predictions.jsonl`` are written atomically into ``--out``. Weights are fp32 on CPU and
bf16 on a CUDA GPU (fp16 where bf16 is unsupported).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import torch

from backend.config import rundir
from backend.config.schema import RunConfig
from backend.engine.chat_render import prepare_tool_conversation
from backend.engine.data import IGNORE_INDEX, tokenize_row
from backend.engine.eval_progress import PROGRESS_FILE, ProgressFile, Tick, no_tick
from backend.engine.failures import EngineError
from backend.engine.rows import Row, iter_rows
from backend.fsio import atomic_write_json, atomic_write_text

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
DEFAULT_CUTOFF_LEN = RunConfig.model_fields["cutoff_len"].default
MAX_BATCH_TOKENS = 4096  # padded tokens per forward pass of the loss


# -- what to evaluate --------------------------------------------------------------------------------------------
def resolve_run_target(run_dir: str | Path) -> tuple[Path, Path | None, int]:
    """``(model dir, adapter dir or None, the run's cutoff_len)`` of a finished run: base + adapter for LoRA/QLoRA
    runs (the exact weights training produced, not the merged copy), the trained model for full/freeze runs."""
    run = rundir.RunDir(Path(run_dir).resolve())
    weights, cutoff_len = run.weights(), run.config.cutoff_len
    if weights.adapter:
        return Path(weights.base_model), weights.adapter, cutoff_len
    if weights.model:
        return weights.model, None, cutoff_len
    raise EngineError(f"run {run.path.name} has no trained output (no {run.adapter_dir} and no {run.model_dir})",
                      "evaluate a run that finished successfully")


def read_eval_rows(path: str | Path, max_samples: int | None) -> list[Row]:
    """The first ``max_samples`` rows supervised training would use (KTO rows labelled false left out)."""
    rows: list[Row] = []
    for _number, row in iter_rows(path):
        if not row.trainable:
            continue
        rows.append(row)
        if max_samples is not None and len(rows) >= max_samples:
            break
    if not rows:
        raise EngineError(f"the dataset {Path(path).name} has no rows to evaluate on",
                          "pick a dataset with conversations (KTO rows labelled false are left out)")
    return rows


# -- loss --------------------------------------------------------------------------------------------------------
def loss_examples(tokenizer, rows: list[Row], cutoff_len: int) -> tuple[list[dict], int]:
    """Token ids and labels of each row as training builds them, cut at ``cutoff_len``; rows left with no token
    to predict are dropped. Returns ``(examples, truncated count)``."""
    examples, truncated = [], 0
    for row in rows:
        example = tokenize_row(tokenizer, row, train_on_prompt=False)
        if len(example["input_ids"]) > cutoff_len:
            truncated += 1
            example = {key: value[:cutoff_len] for key, value in example.items()}
        if any(label != IGNORE_INDEX for label in example["labels"][1:]):  # label 0 has nothing before it
            examples.append(example)
    return examples, truncated


def _batches(examples: list[dict], max_tokens: int):
    batch: list[dict] = []
    for example in examples:
        longest = max([len(e["input_ids"]) for e in batch] + [len(example["input_ids"])])
        if batch and longest * (len(batch) + 1) > max_tokens:
            yield batch
            batch = []
        batch.append(example)
    if batch:
        yield batch


def token_nll(model, examples: list[dict], pad_token_id: int, max_batch_tokens: int = MAX_BATCH_TOKENS,
              tick: Tick = no_tick) -> tuple[float, int]:
    """``(sum of the NLL of every trained token, number of trained tokens)``; token t is predicted from the
    logits at t-1, as in the causal-LM loss training minimizes. Batches are right-padded (masked out)."""
    total, count, done = 0.0, 0, 0
    for batch in _batches(examples, max_batch_tokens):
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, example in enumerate(batch):
            n = len(example["input_ids"])
            ids[i, :n] = torch.tensor(example["input_ids"])
            labels[i, :n] = torch.tensor(example["labels"])
            mask[i, :n] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                           use_cache=False).logits
        targets = labels[:, 1:].to(logits.device)
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
        total += float(nll)
        count += int((targets != IGNORE_INDEX).sum())
        done += len(batch)
        tick(done, len(examples))
    return total, count


# -- predictions -------------------------------------------------------------------------------------------------
def prompt_and_reference(tokenizer, row: Row) -> tuple[list[dict], str] | str:
    """``(messages before the last assistant turn, that turn's text)``, or the reason the row gets no prediction.
    Tool conversations are first written the way training renders them (plain text for templates without tools)."""
    if row.text is not None:
        return "raw text"
    messages, tools = prepare_tool_conversation(tokenizer, row.messages, row.tools)
    if tools or any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
        return "native tool layout"
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        return "no assistant turn after a prompt"
    return [{"role": m["role"], "content": m["content"]} for m in messages[:last]], messages[last]["content"]


def predict(model, tokenizer, rows: list[Row], max_new_tokens: int, tick: Tick = no_tick
            ) -> tuple[list[dict], dict[str, int]]:
    """Greedy replies for the rows that have a prompt; ``(prediction rows, skipped reason -> count)``. Each
    prediction row carries ``row``, the index of its row in ``rows``."""
    from backend.engine.chat_worker import generate

    predictions, skipped = [], {}
    for index, row in enumerate(rows):
        tick(index, len(rows))
        split = prompt_and_reference(tokenizer, row)
        if isinstance(split, str):
            skipped[split] = skipped.get(split, 0) + 1
            continue
        prompt, reference = split
        try:
            reply = generate(model, tokenizer, {"messages": prompt, "max_new_tokens": max_new_tokens,
                                                "temperature": 0.0})
        except ValueError as exc:  # the last prompt message alone does not fit the context
            if "context" not in str(exc):
                raise
            skipped["prompt longer than the context"] = skipped.get("prompt longer than the context", 0) + 1
            continue
        predictions.append({"row": index, "prompt": prompt, "reference": reference, "prediction": reply["text"],
                            "exact_match": exact_match(reference, reply["text"]),
                            "rouge_l": round(rouge_l(reference, reply["text"]), 6),
                            "trimmed_turns": reply["trimmed_turns"]})
    tick(len(rows), len(rows))
    return predictions, skipped


# -- text metrics ------------------------------------------------------------------------------------------------
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")


def exact_match(reference: str, prediction: str) -> bool:
    return " ".join(reference.split()) == " ".join(prediction.split())


def rouge_tokens(text: str) -> list[str]:
    """Lowercased word tokens (letters, digits, underscore); each CJK character is a token of its own."""
    return _TOKEN.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(reference: str, prediction: str) -> float:
    """ROUGE-L F1: the harmonic mean of LCS/len(prediction) and LCS/len(reference); two empty texts score 1."""
    ref, pred = rouge_tokens(reference), rouge_tokens(prediction)
    if not ref or not pred:
        return float(not ref and not pred)
    lcs = lcs_length(ref, pred)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def corpus_bleu(references: list[str], predictions: list[str]) -> float | None:
    """Corpus BLEU-4 (sacrebleu, 13a tokenization) as a fraction; None without predictions."""
    if not predictions:
        return None
    import sacrebleu

    return sacrebleu.corpus_bleu(predictions, [references]).score / 100


def text_scores(references: list[str], predictions: list[str]) -> dict[str, float | None]:
    """``exact_match``, ``rouge_l`` (means over the pairs) and ``bleu`` (corpus); None without pairs."""
    if not predictions:
        return {"exact_match": None, "rouge_l": None, "bleu": None}
    n = len(predictions)
    return {"exact_match": sum(exact_match(r, p) for r, p in zip(references, predictions)) / n,
            "rouge_l": sum(rouge_l(r, p) for r, p in zip(references, predictions)) / n,
            "bleu": corpus_bleu(references, predictions)}


# -- the action --------------------------------------------------------------------------------------------------
SCORE_KEYS = ("loss", "perplexity", "exact_match", "rouge_l", "bleu")


def score_model(model, tokenizer, rows: list[Row], cutoff_len: int, max_new_tokens: int,
                progress: ProgressFile | None = None, side: str = "run") -> tuple[dict, list[dict]]:
    """``(metrics, prediction rows)`` of one model on the rows: loss over the trained tokens, greedy replies."""
    progress = progress or ProgressFile(None, [f"{side}:loss", f"{side}:predictions"])
    examples, truncated = loss_examples(tokenizer, rows, cutoff_len)
    nll, tokens = token_nll(model, examples, tokenizer.pad_token_id, tick=progress.phase(f"{side}:loss"))
    loss = nll / tokens if tokens else None
    predictions, skipped = predict(model, tokenizer, rows, max_new_tokens, tick=progress.phase(f"{side}:predictions"))
    scores = text_scores([p["reference"] for p in predictions], [p["prediction"] for p in predictions])
    return {"loss": loss, "perplexity": math.exp(loss) if loss is not None and loss < 700 else None, **scores,
            "loss_examples": len(examples), "loss_tokens": tokens, "truncated": truncated,
            "predictions": len(predictions), "skipped": skipped}, predictions


def side_by_side(metrics: dict, predictions: list[dict], base: dict, base_predictions: list[dict]) -> None:
    """Add the base model's numbers (``base``), run - base (``delta``) and each row's base prediction."""
    metrics["base"] = base
    metrics["delta"] = {key: metrics[key] - base[key] for key in SCORE_KEYS
                        if metrics.get(key) is not None and base.get(key) is not None}
    by_row = {p["row"]: p for p in base_predictions}
    for prediction in predictions:
        if (other := by_row.get(prediction["row"])) is not None:
            prediction.update({"base_prediction": other["prediction"], "base_exact_match": other["exact_match"],
                               "base_rouge_l": other["rouge_l"]})


def score_generative(rows: list[Row], model_dir: Path, adapter_dir: Path | None, base_dir: Path | None,
                     cutoff_len: int, max_new_tokens: int, out_dir: Path | None = None) -> tuple[dict, list[dict], dict]:
    """``(metrics, predictions, facts)`` of the model (and of ``base_dir`` on the same rows with the same
    tokenizer, when given: like for like)."""
    import gc

    from backend.engine.chat_worker import load, pick_device

    sides = ["run", "base"] if base_dir is not None else ["run"]
    progress = ProgressFile(out_dir, [f"{side}:{phase}" for side in sides for phase in ("loss", "predictions")])
    device, dtype = pick_device()
    torch.manual_seed(0)
    model, tokenizer = load(str(model_dir), str(adapter_dir) if adapter_dir else None, device, dtype)
    print(f"evaluating {model_dir} (adapter {adapter_dir}) on {len(rows)} rows on {device} {dtype}", flush=True)
    metrics, predictions = score_model(model, tokenizer, rows, cutoff_len, max_new_tokens, progress, "run")
    if base_dir is not None:
        del model
        gc.collect()
        base_model, _ = load(str(base_dir), None, device, dtype)
        print(f"evaluating the base model {base_dir} on the same rows", flush=True)
        base, base_predictions = score_model(base_model, tokenizer, rows, cutoff_len, max_new_tokens, progress, "base")
        side_by_side(metrics, predictions, {**base, "model": str(base_dir)}, base_predictions)
    return metrics, predictions, {"device": device.type, "dtype": str(dtype).removeprefix("torch.")}


def choose_rows(run: rundir.RunDir | None, split: str, dataset_path: str | Path | None,
                max_samples: int | None) -> list[Row]:
    from backend.engine.eval_split import held_out_rows

    if split == "held_out":
        if run is None:
            raise EngineError("the held-out split belongs to a run", "pass --run-dir with --split held_out")
        return held_out_rows(run.read_run(), max_samples)
    if dataset_path is None:
        raise EngineError("no dataset to evaluate on", "pass --dataset-path P, or --split held_out with --run-dir")
    return read_eval_rows(dataset_path, max_samples)


def evaluate(out_dir: str | Path, dataset_path: str | Path | None = None, *, run_dir: str | Path | None = None,
             model_dir: str | Path | None = None, adapter_dir: str | Path | None = None,
             dataset_name: str | None = None, max_samples: int | None = 50, max_new_tokens: int = 128,
             cutoff_len: int | None = None, split: str = "dataset", with_base: bool = False) -> dict:
    """Score the model on the rows; write ``metrics.json`` and ``predictions.jsonl`` into ``out_dir``.

    ``split``: ``"dataset"`` (the first rows of ``dataset_path``) or ``"held_out"`` (the run's validation rows).
    ``with_base`` (runs only): also score the run's base model on the same rows (a reward model: its untrained
    start). For a run, each row says whether the run trained on it (``in_training``)."""
    from backend.engine.eval_split import mark_trained

    start = time.perf_counter()
    if (run_dir is None) == (model_dir is None):
        raise EngineError("evaluate needs exactly one of a run directory or a model directory",
                          "pass --run-dir D, or --model-dir M (with --adapter-dir A for an adapter)")
    if with_base and run_dir is None:
        raise EngineError("--with-base compares a run with its base model", "pass --run-dir D")
    run = rundir.RunDir(Path(run_dir).resolve()) if run_dir is not None else None
    resolved = run.read_run() if run is not None else None
    if run is not None:
        model_dir, adapter_dir, run_cutoff = resolve_run_target(run.path)
        cutoff_len = cutoff_len or run_cutoff
    cutoff_len = cutoff_len or DEFAULT_CUTOFF_LEN
    rows = choose_rows(run, split, dataset_path, max_samples)
    in_training, unknown = mark_trained(rows, resolved) if resolved is not None else (None, None)

    if resolved is not None and resolved.config.stage == "rm":
        from backend.engine.eval_pairs import evaluate_pairs

        scored, predictions = evaluate_pairs(run.path, resolved, rows, cutoff_len, with_base, in_training, out_dir)
        metrics = {key: None for key in SCORE_KEYS} | scored | {"predictions": 0}
    else:
        base_dir = Path(resolved.model_path) if with_base and resolved is not None else None
        metrics, predictions, facts = score_generative(rows, Path(model_dir), adapter_dir, base_dir, cutoff_len,
                                                       max_new_tokens, Path(out_dir))
        metrics |= facts
        for prediction in predictions if in_training is not None else []:
            prediction["in_training"] = in_training[prediction["row"]]
    held_out = split == "held_out"
    metrics |= {
        "samples": len(rows), "split": split, "model": str(model_dir),
        "in_training": sum(in_training) if in_training is not None else None, "in_training_unknown": unknown,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "dataset": dataset_name or ("held-out split" if held_out else Path(str(dataset_path)).name),
        "dataset_path": None if held_out else str(dataset_path), "cutoff_len": cutoff_len,
        "max_new_tokens": max_new_tokens, "seconds": round(time.perf_counter() - start, 3)}
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / PREDICTIONS_FILE,
                      "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    atomic_write_json(out_dir / METRICS_FILE, metrics)
    (out_dir / PROGRESS_FILE).unlink(missing_ok=True)  # only meaningful while it runs
    print(f"evaluation done: loss {metrics['loss']}, {len(predictions)} rows scored, {metrics['seconds']} s "
          f"-> {out_dir}", flush=True)
    return metrics
