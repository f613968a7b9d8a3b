"""Merge a LoRA adapter into its base model: run_dir/adapter + base -> run_dir/merged (atomic).

    python -m backend.engine merge --run-dir runs/<id>

Refuses an adapter whose lora_B weights are all zero: merging it would silently produce the base model.
Full/freeze runs need no merge: run_dir/model already is the standalone model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from backend.config import rundir
from backend.engine.failures import EngineError
from backend.fsio import replace_dir

MAX_SHARD_SIZE = "2GB"
_SAVE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def read_saved_dtype(model_dir: Path) -> torch.dtype:
    """The dtype the base model was published in (its config.json), fp32 when unknown."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return _SAVE_DTYPES.get(str(config.get("dtype") or config.get("torch_dtype")), torch.float32)


def check_adapter_not_noop(peft_model) -> None:
    """Raise if every lora_B weight is zero (an untrained adapter: merging it changes nothing)."""
    lora_b = [p for name, p in peft_model.named_parameters() if "lora_B" in name]
    if not lora_b:
        raise EngineError("the adapter has no LoRA weights", "export needs a LoRA/QLoRA run's adapter/")
    if all(torch.count_nonzero(p).item() == 0 for p in lora_b):
        raise EngineError(
            "the adapter is a no-op: every lora_B weight is zero, so merging would reproduce the base model",
            "train for more steps or with a higher learning rate, then export again",
        )


def merge_adapter(run_dir: str | Path) -> Path:
    """Write base+adapter merged weights (safetensors shards + config + tokenizer) to run_dir/merged."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from backend.engine.model import load_model

    run_dir = Path(run_dir).resolve()
    run = rundir.read_resolved_run(run_dir)
    adapter_dir = run_dir / rundir.ADAPTER_DIR
    model_dir = run_dir / rundir.MODEL_DIR
    if not (adapter_dir / "adapter_config.json").is_file():
        if model_dir.is_dir():
            print(f"this {run.config.method.name} run trained the whole model: {model_dir} is already the merged model")
            return model_dir
        raise EngineError(
            f"no adapter in {adapter_dir}",
            "the run has not finished successfully; export needs a succeeded LoRA/QLoRA run",
        )

    base_dir = Path(run.model_path)
    print(f"merging {adapter_dir} into {base_dir}", flush=True)
    base = load_model(base_dir, torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(adapter_dir))
    check_adapter_not_noop(peft_model)
    merged = peft_model.merge_and_unload()
    merged.config.use_cache = True
    merged = merged.to(read_saved_dtype(base_dir))

    final_dir = run_dir / rundir.MERGED_DIR
    tmp_dir = final_dir.with_name(f".{final_dir.name}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    merged.save_pretrained(str(tmp_dir), max_shard_size=MAX_SHARD_SIZE)
    tokenizer_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(tmp_dir))
    replace_dir(tmp_dir, final_dir)
    print(f"merged model written to {final_dir}", flush=True)
    return final_dir
