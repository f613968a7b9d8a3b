"""Suggested training settings for a base model on this machine ("sensible defaults per model size").

From the model's config.json (its size) and the GPUs nvidia-smi reports (their free memory), pick a method that
fits — LoRA, else QLoRA — with a LoRA rank, learning rate, batch shape and cutoff that suit the model's size, and
say why. The memory estimate is the engine's own plan (``backend.engine.memory_plan``, torch-free), the same one
that picks gradient checkpointing and the micro-batch token budget when the run starts. No torch here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backend.engine.memory_plan import GIB, ModelShape, TrainSetup, plan_memory
from backend.errors import Invalid
from backend.jobs.gpus import GpuInfo

TYPICAL_TOKENS = 260          # median instruction example (the speed issue's reference data)
CPU_SLOW_PARAMS = 1.5e9       # above this, CPU training is a matter of hours per hundred steps


@dataclass
class Suggestion:
    parameters: int
    device: str
    settings: dict                      # RunConfig fields (nested method), to merge over the form's values
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def human_params(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    return f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


class ModelNotSizable(Invalid):
    """The model's config.json does not say how big it is (missing, unreadable or of an unknown layout)."""


def read_model_shape(model_dir: str | Path, model: str) -> tuple[dict, ModelShape]:
    """config.json and the shape read from it, or ModelNotSizable naming the model."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        return config, ModelShape.from_config(config)
    except (KeyError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise ModelNotSizable(f"cannot size {model!r} from its config.json ({type(exc).__name__}: {exc}); "
                              "set the training fields by hand", loc=("query", "model")) from None


def suggest_settings(model_dir: str | Path, gpus: list[GpuInfo], model: str = "") -> Suggestion:
    """Settings for training the model in ``model_dir`` on ``gpus`` (empty: this machine's CPU)."""
    config, shape = read_model_shape(model_dir, model or str(model_dir))
    n = shape.num_params
    text_config = config.get("text_config") or config
    context = int(text_config.get("max_position_embeddings") or 4096)
    big = n >= 1e9
    lora = {"name": "lora", "rank": 16 if big else 8, "alpha": 32 if big else 16, "targets": ["all-linear"]}
    settings: dict = {"learning_rate": 1e-4 if n > 15e9 else 2e-4, "compute_type": "auto",
                      "gradient_checkpointing": "auto", "packing": True}
    notes = [f"{human_params(n)} parameters ({shape.num_layers} layers, hidden size {shape.hidden_size})."]
    if not gpus:
        cores = os.cpu_count() or 1
        settings.update(method=lora, per_device_batch_size=4, gradient_accumulation_steps=2,
                        cutoff_len=min(context, 1024))
        notes.append(f"No GPU here: LoRA on the CPU ({cores} cores), bf16 where the CPU supports it.")
        if n > CPU_SLOW_PARAMS:
            notes.append(f"A {human_params(n)} model trains very slowly on a CPU (hours per hundred steps); use a "
                         "machine with a GPU, or a model under 1B parameters to try things out.")
        return Suggestion(parameters=n, device=f"CPU ({cores} cores)", settings=settings, notes=notes)

    free = min(g.memory_total_mib - g.memory_used_mib for g in gpus) * 2**20
    device = f"{len(gpus)} × {gpus[0].name} ({free / GIB:.0f} GiB free)"
    cutoff = min(context, 2048)
    batch = 4 if n < 3e9 else 2
    settings.update(per_device_batch_size=batch, gradient_accumulation_steps=max(1, 16 // batch), cutoff_len=cutoff)
    wanted = batch * TYPICAL_TOKENS
    plans = {}
    for method in ("lora", "qlora"):
        setup = TrainSetup(method=method, lora_rank=lora["rank"])
        plans[method] = plan_memory(shape, setup, cutoff_len=cutoff, wanted_tokens=wanted, free_bytes=free)
    if plans["lora"].fits:
        settings["method"] = lora
        plan = plans["lora"]
        notes.append(f"LoRA fits: est. peak {plan.peak_gib:.1f} GiB of {plan.free_gib:.0f} GiB free, gradient "
                     f"checkpointing {'on' if plan.gradient_checkpointing else 'off'}.")
        full = plan_memory(shape, TrainSetup(method="full"), cutoff_len=cutoff, wanted_tokens=wanted, free_bytes=free)
        if full.fits:
            notes.append(f"Full fine-tuning would fit too (est. peak {full.peak_gib:.1f} GiB) at a learning rate "
                         "around 2e-5.")
    else:
        settings["method"] = {**lora, "name": "qlora", "bits": 4}
        plan = plans["qlora"]
        if plan.fits:
            notes.append(f"LoRA does not fit in {plan.free_gib:.0f} GiB (base weights alone "
                         f"{plans['lora'].fixed_gib:.0f} GiB): QLoRA 4-bit, est. peak {plan.peak_gib:.1f} GiB.")
        else:
            notes.append(f"Even QLoRA 4-bit does not fit in {plan.free_gib:.0f} GiB on one GPU: spread it with "
                         "DeepSpeed ZeRO-3 and CPU offload (distributed settings), use a smaller cutoff_len, or a "
                         "bigger GPU.")
    return Suggestion(parameters=n, device=device, settings=settings, notes=notes)
