"""The README.md model card of an export: base model, datasets with hashes, method and hyperparameters, final
losses and evaluation results - all read from the run directory (the source of truth), nothing from memory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from backend.config import rundir
from backend.config.schema import DatasetRef, ResolvedRun
from backend.fsio import iter_jsonl, read_json_object

EVALUATIONS_DIR = "evaluations"
SCORES = ("loss", "perplexity", "exact_match", "rouge_l", "bleu", "pairwise_accuracy", "mean_margin")
HYPERPARAMETERS = ("stage", "learning_rate", "num_epochs", "max_steps", "per_device_batch_size",
                   "gradient_accumulation_steps", "cutoff_len", "lr_scheduler", "warmup_ratio", "compute_type",
                   "packing", "chat_template", "seed")


def dataset_sha256(ref: DatasetRef) -> str:
    """The normalized data's sha256 (the registry's meta.json has it; else hashed here); "missing" if deleted."""
    path = Path(ref.path)
    meta = read_json_object(path.parent / "meta.json") or {}
    if isinstance(meta.get("sha256"), str):
        return meta["sha256"]
    if not path.is_file():
        return "missing (the dataset was deleted)"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def final_losses(run_dir: Path) -> dict[str, float]:
    """The last logged train loss and eval loss (events.jsonl), and the trainer's mean train loss (result.json)."""
    losses: dict[str, float] = {}
    for row in iter_jsonl(run_dir / rundir.EVENTS_FILE):
        for key, name in (("loss", "final train loss"), ("eval_loss", "final eval loss")):
            if isinstance(row.get(key), (int, float)):
                losses[name] = float(row[key])
    result = read_json_object(run_dir / rundir.RESULT_FILE) or {}
    if isinstance(result.get("train_loss"), (int, float)):
        losses["mean train loss"] = float(result["train_loss"])
    return losses


def evaluations(run_dir: Path) -> list[dict]:
    found = []
    root = run_dir / EVALUATIONS_DIR
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        metrics = read_json_object(child / "metrics.json")
        if metrics and not child.name.startswith("."):
            found.append(metrics)
    return found


def _method_lines(run: ResolvedRun) -> list[str]:
    method = run.config.method.model_dump(mode="json")
    lines = [f"- method: `{method.pop('name')}`"]
    lines += [f"- {key}: `{json.dumps(value)}`" for key, value in method.items() if value not in (None, [], {})]
    config = run.config.model_dump(mode="json")
    lines += [f"- {key}: `{json.dumps(config[key])}`" for key in HYPERPARAMETERS if config.get(key) is not None]
    return lines


def build_model_card(run_dir: Path, export_line: str) -> str:
    run_dir = Path(run_dir)
    run = rundir.read_resolved_run(run_dir)
    base = Path(run.model_path).name
    lines = [f"# {run.run_id}", "", f"Fine-tuned from **{base}** with Tunesmith. {export_line}", "",
             "## Base model", "", f"- `{base}` (`{run.model_path}`)", "", "## Training data", ""]
    for ref in run.datasets:
        lines.append(f"- {ref.name} (`{ref.id}`, {ref.format}, {ref.num_rows} rows) sha256 `{dataset_sha256(ref)}`")
    for ref in run.val_datasets:
        lines.append(f"- validation: {ref.name} (`{ref.id}`) sha256 `{dataset_sha256(ref)}`")
    lines += ["", "## Method and hyperparameters", "", *_method_lines(run), "", "## Results", ""]
    losses = final_losses(run_dir)
    lines += [f"- {name}: {value:.4f}" for name, value in losses.items()] or ["- no losses were logged"]
    for metrics in evaluations(run_dir):
        scores = ", ".join(f"{key} {metrics[key]:.4f}" for key in SCORES if isinstance(metrics.get(key), (int, float)))
        seen = metrics.get("in_training")  # say when the scored rows were trained on
        trained = f", {seen} of them in the training data" if isinstance(seen, int) and seen else ""
        lines.append(f"- evaluation `{metrics.get('id')}` on {metrics.get('dataset', '?')} "
                     f"({metrics.get('samples', '?')} samples{trained}): {scores}")
    return "\n".join(lines) + "\n"
