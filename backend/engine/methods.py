"""Fine-tuning methods: what gets trained (full | freeze | lora | qlora).

- full:   every weight trainable.
- freeze: only the last N decoder layers trainable.
- lora / qlora: returns a peft LoraConfig; SFTTrainer wraps the model (so ZeRO-3 details stay in trl).
  qlora additionally loads the base model 4/8-bit through bitsandbytes, which needs a CUDA GPU.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import torch

from backend.config.schema import FreezeMethod, LoraMethod, QLoraMethod
from backend.engine.failures import EngineError

if TYPE_CHECKING:
    from peft import LoraConfig

QLORA_NEEDS = "QLoRA needs a CUDA GPU and bitsandbytes; use method lora on this machine"


def check_qlora_available() -> None:
    if not torch.cuda.is_available():
        raise EngineError("QLoRA needs a CUDA GPU but none is visible", QLORA_NEEDS)
    if importlib.util.find_spec("bitsandbytes") is None:
        raise EngineError(
            "QLoRA needs the bitsandbytes package, which is not installed",
            "pip install 'tunesmith[gpu]' (bitsandbytes) on this CUDA machine, or use method lora",
        )


def build_quantization_config(method: QLoraMethod, compute_dtype: torch.dtype):
    """The BitsAndBytesConfig for loading a QLoRA base model (call check_qlora_available first)."""
    from transformers import BitsAndBytesConfig

    if method.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=method.quant_type,
        bnb_4bit_use_double_quant=method.double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=compute_dtype,
    )


def build_lora_config(method: LoraMethod) -> "LoraConfig":
    from peft import LoraConfig

    targets = "all-linear" if method.targets == ["all-linear"] else list(method.targets)
    return LoraConfig(
        r=method.rank,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def find_decoder_layers(model) -> torch.nn.ModuleList:
    """The longest ModuleList named like ``layers``/``h``/``blocks``: the decoder stack."""
    candidates = [
        module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] in ("layers", "h", "blocks", "layer")
    ]
    if not candidates:
        raise EngineError("freeze: could not find the decoder layers of this model", "use method lora or full")
    return max(candidates, key=len)


def freeze_all_but_last_layers(model, method: FreezeMethod) -> None:
    layers = find_decoder_layers(model)
    if method.trainable_layers > len(layers):
        raise EngineError(
            f"freeze: trainable_layers={method.trainable_layers} but the model has only {len(layers)} decoder layers",
            f"set trainable_layers to at most {len(layers)}, or use method full",
        )
    for param in model.parameters():
        param.requires_grad_(False)
    for layer in list(layers)[-method.trainable_layers:]:
        for param in layer.parameters():
            param.requires_grad_(True)


def apply_method(model, method, gradient_checkpointing: bool = False) -> "LoraConfig | None":
    """Set requires_grad for full/freeze; for lora/qlora return the LoraConfig SFTTrainer applies."""
    if method.name == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return None
    if method.name == "freeze":
        freeze_all_but_last_layers(model, method)
        return None
    if method.name == "qlora":
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return build_lora_config(method)


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
