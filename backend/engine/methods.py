"""Fine-tuning methods: what gets trained (full | freeze | lora | qlora).

- full:   every weight trainable.
- freeze: only the last N decoder layers trainable (optionally only some of their parts, plus extra modules).
- lora / qlora: returns a peft LoraConfig; SFTTrainer wraps the model (so ZeRO-3 details stay in trl).
  qlora additionally loads the base model 4/8-bit through bitsandbytes (backend.engine.quantization; CUDA or CPU).
  Variants: rsLoRA, DoRA, PiSSA/gaussian init, modules_to_save (extra_trainable_modules) are LoraConfig
  options; LoRA+ is an optimizer with its own learning rate for the B matrices (loraplus_param_groups).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from backend.config.schema import FreezeMethod, LoraMethod
from backend.engine.failures import EngineError
from backend.engine.quantization import (
    build_quantization_config,  # noqa: F401 - recipe loads QLoRA bases with it
    check_bitsandbytes_installed,
)

if TYPE_CHECKING:
    from peft import LoraConfig

PISSA_INIT = "pissa_niter_4"  # fast randomized SVD (4 subspace iterations) instead of a full SVD


def check_qlora_available() -> None:
    """QLoRA runs wherever bitsandbytes has kernels: a CUDA GPU, or the CPU (slowly); it needs the package."""
    check_bitsandbytes_installed("QLoRA")


def build_lora_config(method: LoraMethod) -> LoraConfig:
    from peft import LoraConfig

    targets = "all-linear" if method.targets == ["all-linear"] else list(method.targets)
    init = {"default": True, "pissa": PISSA_INIT, "gaussian": "gaussian"}[method.init]
    return LoraConfig(
        r=method.rank,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=method.use_rslora,
        use_dora=method.use_dora,
        init_lora_weights=init,
        modules_to_save=list(method.extra_trainable_modules) or None,
    )


def loraplus_param_groups(model, lr: float, ratio: float, weight_decay: float, decay_names) -> list[dict]:
    """LoRA+ (https://arxiv.org/abs/2402.12354): optimizer groups where every ``lora_B`` matrix learns at
    ``ratio * lr`` and everything else trainable (lora_A, DoRA magnitudes, modules_to_save) at ``lr``.
    The first group is always a base-lr group, so the logged learning rate stays the base one."""
    decay_names = set(decay_names)
    groups: dict[tuple[bool, bool], list] = {(b, d): [] for b in (False, True) for d in (True, False)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            is_b = "lora_B" in name or "lora_embedding_B" in name
            groups[(is_b, name in decay_names)].append(param)
    if not any(groups[(True, d)] for d in (True, False)):
        raise EngineError("loraplus_lr_ratio is set but the model has no LoRA B matrices", "use method lora or qlora")
    result = []
    for (is_b, decay), params in groups.items():
        if params or (not is_b and decay):
            result.append({"params": params, "lr": lr * ratio if is_b else lr,
                           "weight_decay": weight_decay if decay else 0.0})
    return result


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


def _in_module(param_name: str, module: str) -> bool:
    """``model.layers.1.mlp.up_proj.weight`` is in ``mlp``, ``mlp.up_proj`` and ``model.layers.1.mlp``."""
    return param_name.startswith(module + ".") or f".{module}." in f".{param_name}"


def freeze_all_but_last_layers(model, method: FreezeMethod) -> None:
    layers = find_decoder_layers(model)
    if method.trainable_layers > len(layers):
        raise EngineError(
            f"freeze: trainable_layers={method.trainable_layers} but the model has only {len(layers)} decoder layers",
            f"set trainable_layers to at most {len(layers)}, or use method full",
        )
    for param in model.parameters():
        param.requires_grad_(False)
    parts = method.trainable_modules or []
    for layer in list(layers)[-method.trainable_layers:]:
        named = list(layer.named_parameters())
        for part in parts:
            if not any(_in_module(name, part) for name, _ in named):
                children = ", ".join(name for name, _ in layer.named_children())
                raise EngineError(f"freeze: the decoder layers have no module {part!r}",
                                  f"set trainable_modules to some of: {children}")
        for name, param in named:
            if not parts or any(_in_module(name, part) for part in parts):
                param.requires_grad_(True)
    for extra in method.extra_modules:
        found = [param for name, param in model.named_parameters() if _in_module(name, extra)]
        if not found:
            top = ", ".join(sorted({n.rsplit(".", 1)[0] for n, _ in model.named_parameters() if ".layers." not in n}))
            raise EngineError(f"freeze: the model has no module {extra!r}", f"set extra_modules to some of: {top}")
        for param in found:
            param.requires_grad_(True)


def apply_method(model, method, gradient_checkpointing: bool = False) -> LoraConfig | None:
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


def cast_trainable_to(model, dtype: torch.dtype) -> None:
    """pure_bf16: the trained parameters (LoRA adapters, DoRA magnitudes, modules_to_save) in ``dtype`` too; peft
    would keep adapters in fp32. Call before the optimizer exists (it is created in ``trainer.train``)."""
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
