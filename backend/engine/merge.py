"""Merge a LoRA/QLoRA adapter into its base model: run_dir/adapter + base -> run_dir/merged (atomic).

    python -m backend.engine merge --run-dir runs/<id> [--dtype bf16|fp16|fp32] [--max-shard-size 2GB]

- LoRA: the base in fp32, the adapter merged, saved in ``dtype`` (default: the dtype the base was published in).
- QLoRA: the adapter learned against the *quantized* base, and merging into bitsandbytes layers can silently drop
  it (see backend.engine.quantization), so the base is loaded quantized exactly as in training, dequantized, and
  the merge goes into that full-precision copy.
- full/freeze runs (also ZeRO-3/FSDP ones, whose trainer saved consolidated weights): run_dir/model already is
  the standalone model; with an explicit ``dtype`` that differs from it, a converted copy goes to run_dir/merged.
Refuses an adapter whose lora_B weights are all zero: merging it would silently produce the base model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import torch

from backend.config import rundir
from backend.engine.failures import EngineError
from backend.fsio import replace_dir

MergeDtype = Literal["bf16", "fp16", "fp32"]
MERGE_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MAX_SHARD_SIZE = "2GB"
_SAVED_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def read_saved_dtype(model_dir: Path) -> torch.dtype:
    """The dtype a model was published in (its config.json), fp32 when unknown."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    return _SAVED_DTYPES.get(str(config.get("dtype") or config.get("torch_dtype")), torch.float32)


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


def check_max_shard_size(max_shard_size: str) -> str:
    """``"2GB"``, ``"500MB"``...: what save_pretrained accepts, checked before minutes of loading."""
    from transformers.utils.hub import convert_file_size_to_int

    try:
        if convert_file_size_to_int(max_shard_size) <= 0:
            raise ValueError(max_shard_size)
    except (ValueError, TypeError) as exc:
        raise EngineError(f"max_shard_size {max_shard_size!r} is not a size", "write it like 2GB, 500MB or 1GiB") from exc
    return max_shard_size


def run_compute_dtype(run_dir: Path, compute_type: str) -> torch.dtype:
    """The dtype the run computed in (QLoRA quantizes its base from weights cast to it): the precision the engine
    resolved and recorded in result.json, else the config's resolved again."""
    from backend.engine.model import resolve_precision
    from backend.fsio import read_json_object

    recorded = (read_json_object(run_dir / rundir.RESULT_FILE) or {}).get("precision")
    name = recorded if recorded in ("bf16", "fp16", "fp32", "pure_bf16") else resolve_precision(compute_type).name
    return torch.float32 if name == "fp32" else torch.float16 if name == "fp16" else torch.bfloat16


def load_merged_adapter(run_dir: Path):
    """The run's adapter merged into a full-precision (fp32) copy of the base it was trained against."""
    from peft import PeftModel

    from backend.engine.quantization import load_dequantized_base
    from backend.engine.stages import get_stage

    run = rundir.read_resolved_run(run_dir)
    method = run.config.method
    load_model = get_stage(run.config.stage).load_model  # a causal LM, or rm's sequence classifier (its score head)
    if method.name == "qlora" and run.config.stage == "rm":
        raise EngineError("merging a QLoRA reward model (stage rm) is not supported: its dequantized base would lose "
                          "the score head", "use its adapter (with the base model), or train the reward model with LoRA")
    if method.name == "qlora":
        base = load_dequantized_base(Path(run.model_path), method, run_compute_dtype(run_dir, run.config.compute_type))
    else:
        base = load_model(Path(run.model_path), torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(run_dir / rundir.ADAPTER_DIR))
    check_adapter_not_noop(peft_model)
    return peft_model.merge_and_unload()


def merge_adapter(run_dir: str | Path, dtype: MergeDtype | None = None, max_shard_size: str = MAX_SHARD_SIZE,
                  out_dir: str | Path | None = None) -> Path:
    """Write the run's standalone model (safetensors shards + config + tokenizer) to ``out_dir`` (default
    run_dir/merged) in ``dtype`` (None = the base model's published dtype) and return its directory. A full or
    freeze run's own model/ is returned as is when no other dtype is asked for."""
    from transformers import AutoTokenizer

    from backend.engine.stages import get_stage

    if dtype is not None and dtype not in MERGE_DTYPES:
        raise EngineError(f"dtype {dtype!r} is not one of {sorted(MERGE_DTYPES)}", "use bf16, fp16 or fp32")
    check_max_shard_size(max_shard_size)
    run_dir = Path(run_dir).resolve()
    run = rundir.read_resolved_run(run_dir)
    adapter_dir, model_dir = run_dir / rundir.ADAPTER_DIR, run_dir / rundir.MODEL_DIR
    final_dir = Path(out_dir).resolve() if out_dir else run_dir / rundir.MERGED_DIR
    if (adapter_dir / "adapter_config.json").is_file():
        print(f"merging {adapter_dir} into {run.model_path} ({run.config.method.name})", flush=True)
        merged = load_merged_adapter(run_dir)
        tokenizer_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else Path(run.model_path)
        save_dtype = MERGE_DTYPES[dtype] if dtype else read_saved_dtype(Path(run.model_path))
    elif (model_dir / "config.json").is_file():
        save_dtype = MERGE_DTYPES[dtype] if dtype else read_saved_dtype(model_dir)
        if save_dtype == read_saved_dtype(model_dir) and out_dir is None:
            print(f"this {run.config.method.name} run trained the whole model: {model_dir} is already the merged "
                  "model", flush=True)
            return model_dir
        merged = get_stage(run.config.stage).load_model(model_dir, torch.float32)  # rm: its sequence classifier
        tokenizer_dir = model_dir
    else:
        raise EngineError(f"no adapter in {adapter_dir} and no model in {model_dir}",
                          "the run has not finished successfully; merging needs a succeeded run")
    merged.config.use_cache = True
    merged = merged.to(save_dtype)

    tmp_dir = final_dir.with_name(f".{final_dir.name}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    merged.save_pretrained(str(tmp_dir), max_shard_size=max_shard_size)
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(tmp_dir))
    replace_dir(tmp_dir, final_dir)
    print(f"merged model ({str(save_dtype).removeprefix('torch.')}) written to {final_dir}", flush=True)
    return final_dir
