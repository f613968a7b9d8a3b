"""The baseline of issue 5, reimplemented: LLaMA-Factory's SFT path, i.e. plain HF Trainer + PEFT.

    python -m bench.baseline SPEC.json        (run by bench/speed.py in a subprocess of its own)

bf16 autocast, SDPA attention, examples padded to the longest in the batch (multiple of 8, labels -100),
LoRA r 16 / alpha 32 / dropout 0 on all linear layers; full fine-tuning keeps fp32 master weights; QLoRA loads
the base nf4 with double quantization and bf16 compute (bitsandbytes), as LLaMA-Factory does (no fp32 up-casting
of the LM head). Examples are tokenized and masked by the engine's own data code, so both runs see the same
input ids and labels. Writes SPEC["result"]: status, per-step (time, real tokens, loss), peak memory.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def load_examples(model_dir: str, data_path: str, cutoff: int, seed: int):
    from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
    from backend.engine.data import DataStats
    from backend.engine.model import load_tokenizer
    from backend.engine.stages import build_examples

    tokenizer = load_tokenizer(model_dir)
    config = RunConfig.model_validate({"base_model": model_dir, "datasets": ["bench"], "cutoff_len": cutoff, "seed": seed})
    run = ResolvedRun(run_id="baseline", config=config, model_path=model_dir,
                      datasets=[DatasetRef(id="bench", name="bench", path=data_path)])
    return build_examples(run, tokenizer, DataStats())[0], tokenizer


def load_model(spec: dict):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    method = spec["method"]
    kwargs: dict = {"attn_implementation": "sdpa", "dtype": torch.float32 if method == "full" else torch.bfloat16}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], **kwargs)
    model.config.use_cache = False
    if method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        if spec["gradient_checkpointing"]:
            model.enable_input_require_grads()
        lora = spec.get("lora", {})
        model = get_peft_model(model, LoraConfig(r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32),
                                                 lora_dropout=lora.get("dropout", 0.0), target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    return model


def training_arguments(spec: dict, output_dir: str):
    from transformers import TrainingArguments

    from backend.engine.model import cpu_has_native_bf16

    cpu = spec["device"] == "cpu"
    checkpointing = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
                     else "gradient_checkpointing")
    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=spec["batch"], gradient_accumulation_steps=1,
        max_steps=spec["steps"], learning_rate=spec["lr"], lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", logging_steps=1, logging_first_step=True,
        save_strategy="no", report_to="none", disable_tqdm=True, remove_unused_columns=False, seed=spec["seed"],
        data_seed=spec["seed"], bf16=not cpu or cpu_has_native_bf16(), use_cpu=cpu,
        include_num_input_tokens_seen="non_padding", **{checkpointing: bool(spec["gradient_checkpointing"])},
    )


def run(spec: dict) -> dict:
    import tempfile

    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback

    from datasets import Dataset

    started = time.time()
    examples, tokenizer = load_examples(spec["model_dir"], spec["data_path"], spec["cutoff"], spec["seed"])
    samples: list[tuple[float, int, float]] = []
    padded = [0]

    class Steps(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:  # the loss .item() has synchronised the GPU
                samples.append((time.time(), int(state.num_input_tokens_seen), float(logs["loss"])))

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, *args, **kwargs):
            padded[0] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, *args, **kwargs)

    model = load_model(spec)
    loaded = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        trainer = CountingTrainer(
            model=model, args=training_arguments(spec, tmp), train_dataset=Dataset.from_list(examples),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", pad_to_multiple_of=8,
                                                 label_pad_token_id=-100),
            callbacks=[Steps()],
        )
        trainer.train()
    real = samples[-1][1] if samples else 0
    result = {"status": "succeeded", "samples": samples, "examples": len(examples), "load_s": round(loaded - started, 1),
              "train_s": round(time.time() - loaded, 1), "real_tokens": real, "padded_tokens": padded[0],
              "pad_share": round(1 - real / padded[0], 3) if padded[0] else None}
    if torch.cuda.is_available():
        result["peak_alloc_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    return result


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        result = run(spec)
    except Exception as exc:  # noqa: BLE001 - a benchmark row records the failure and goes on
        import torch

        traceback.print_exc()
        oom = isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
        error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        result = {"status": "out of memory" if oom else "failed", "error": error}
        if torch.cuda.is_available():
            result["peak_alloc_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    Path(spec["result"]).write_text(json.dumps(result))
    print(f"baseline {result['status']}", flush=True)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
