"""CPU benchmark: the built-in identity demo, LoRA on the bundled SmolLM2-135M-Instruct, 3 epochs.

    .venv/bin/python bench/cpu_identity.py [--model DIR] [--skip-baseline] [--skip-ours]

Runs, one after the other on the same machine and the same tokenized examples:
  ours      the real job path (JobService.submit -> accelerate launch -> backend.engine) with the
            identity_lora preset; reports submit -> adapter-ready seconds and real tokens/s.
  baseline  plain HF Trainer + PEFT (LLaMA-Factory's path): bf16, LoRA r=8 on q_proj/v_proj,
            pad-to-longest batches, same batch size and epochs; reports real (non-pad) tokens/s.
A benchmark reports numbers; it asserts nothing. Copy the printed table into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.settings import BUNDLED_MODEL_ID, Settings  # noqa: E402

PRESET = REPO / "backend" / "config" / "presets" / "identity_lora.yaml"


def run_ours(model_dir: Path, home: Path, overrides: dict) -> dict:
    """Submit through the studio's own job service and wait for the adapter."""
    from backend.config.schema import RunConfig
    from backend.datasets.registry import DatasetRegistry
    from backend.fsio import iter_jsonl, read_yaml
    from backend.jobs.runner import JobRunner
    from backend.jobs.service import JobService
    from backend.jobs.store import JobStore

    os.environ["TUNESMITH_MODELS_DIR"] = str(model_dir.parent)
    settings = Settings.from_env(home)
    settings.ensure_dirs()
    registry = DatasetRegistry(settings)
    registry.register_builtin(REPO / "datasets")
    store = JobStore(settings.db_path)
    runner = JobRunner(store, max_concurrent=1, poll_interval=0.1)
    service = JobService(settings, store, runner, registry)
    config = RunConfig.model_validate({**read_yaml(PRESET), "base_model": model_dir.name, **overrides})
    started = time.perf_counter()
    job = service.submit(config)
    while service.get(job.id).state in ("queued", "running"):
        runner.tick()
        time.sleep(0.1)
    wall = time.perf_counter() - started
    final = service.get(job.id)
    run_dir = Path(final.run_dir)
    events = [e for e in iter_jsonl(run_dir / "events.jsonl") if "loss" in e]
    result = json.loads((run_dir / "result.json").read_text())
    tokens = real_tokens(model_dir, str(registry.get("identity").path), config)
    train_s = events[-1]["time"] - events[0]["time"] if len(events) > 1 else float("nan")
    steps = len(events)
    return {
        "state": final.state, "submit_to_adapter_s": wall, "engine_runtime_s": result.get("runtime_s"),
        "real_tokens": tokens, "tokens_per_s_end_to_end": tokens / wall,
        "tokens_per_s_train": tokens * (steps - 1) / steps / train_s if steps > 1 else float("nan"),
        "first_loss": events[0]["loss"] if events else None, "last_loss": events[-1]["loss"] if events else None,
        "adapter": (run_dir / "adapter" / "adapter_model.safetensors").is_file(),
    }


def tokenized_examples(model_dir: Path, data_path: str, config) -> list[dict]:
    from backend.config.schema import DatasetRef, ResolvedRun
    from backend.engine.data import DataStats
    from backend.engine.model import load_tokenizer
    from backend.engine.stages import build_examples

    tokenizer = load_tokenizer(model_dir)
    run = ResolvedRun(run_id="bench", config=config, model_path=str(model_dir),
                      datasets=[DatasetRef(id="identity", name="identity", path=data_path)])
    return build_examples(run, tokenizer, DataStats())[0], tokenizer


def real_tokens(model_dir: Path, data_path: str, config) -> int:
    examples, _ = tokenized_examples(model_dir, data_path, config)
    return int(sum(len(e["input_ids"]) for e in examples) * config.num_epochs)


def run_baseline(model_dir: Path, data_path: str, config, out_dir: Path) -> dict:
    """LLaMA-Factory-style: HF Trainer + PEFT, bf16, LoRA q/v, pad to the longest in the batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from datasets import Dataset

    examples, tokenizer = tokenized_examples(model_dir, data_path, config)
    tokens = int(sum(len(e["input_ids"]) for e in examples) * config.num_epochs)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    args = TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, num_train_epochs=config.num_epochs,
        learning_rate=config.effective_learning_rate, bf16=True, use_cpu=True, logging_steps=1,
        save_strategy="no", report_to="none", disable_tqdm=True, remove_unused_columns=False, seed=config.seed,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(examples), data_collator=collator)
    train_started = time.perf_counter()
    out = trainer.train()
    train_s = time.perf_counter() - train_started
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"state": "succeeded", "submit_to_adapter_s": time.perf_counter() - started, "real_tokens": tokens,
            "tokens_per_s_train": tokens / train_s, "train_s": train_s, "first_loss": losses[0],
            "last_loss": losses[-1], "train_loss": out.training_loss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Settings.from_env().models_dir / BUNDLED_MODEL_ID)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="override a preset field for our run, e.g. --set lora_targets='[\"q_proj\",\"v_proj\"]'")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    from backend.config.schema import RunConfig
    from backend.fsio import read_yaml

    config = RunConfig.model_validate({**read_yaml(PRESET), "base_model": args.model.name, **overrides})
    rows = {}
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as tmp:
        if not args.skip_ours:
            rows["ours"] = run_ours(args.model, Path(tmp) / "home", overrides)
            print("ours", json.dumps(rows["ours"]), flush=True)
        if not args.skip_baseline:
            from backend.datasets.registry import DatasetRegistry

            settings = Settings.from_env(Path(tmp) / "home")
            settings.ensure_dirs()
            registry = DatasetRegistry(settings)
            registry.register_builtin(REPO / "datasets")
            data_path = str(registry.get("identity").path)
            rows["baseline"] = run_baseline(args.model, data_path, config, Path(tmp) / "baseline")
            print("baseline", json.dumps(rows["baseline"]), flush=True)
    print(f"\n{time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores")
    print("| run | submit→adapter s | real tokens | tok/s (train) | first→last loss |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['submit_to_adapter_s']:.1f} | {r['real_tokens']} | {r['tokens_per_s_train']:.0f} | "
              f"{r['first_loss']:.3f}→{r['last_loss']:.3f} |")
    if "ours" in rows and "baseline" in rows:
        print(f"ratio (train tok/s): {rows['ours']['tokens_per_s_train'] / rows['baseline']['tokens_per_s_train']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
