"""Load a base model and its tokenizer from a local HF-format directory, in the requested precision."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from backend.config.schema import Attention, ComputeType, Switch
from backend.engine.failures import EngineError


@dataclass(frozen=True)
class Precision:
    """What the weights are loaded in and which autocast the trainer uses."""

    name: str            # "bf16" | "fp16" | "fp32" | "pure_bf16", after resolving "auto"
    dtype: torch.dtype   # compute dtype

    @property
    def pure(self) -> bool:
        """pure_bf16: every weight (trained ones too) and the optimizer state in bf16, no fp32 master copy."""
        return self.name == "pure_bf16"

    @property
    def half(self) -> bool:
        return self.dtype in (torch.bfloat16, torch.float16)

    @property
    def trainer_flags(self) -> dict[str, bool]:
        """Autocast flags for the trainer: pure_bf16 has nothing to cast (the weights already are bf16)."""
        return {"bf16": self.name == "bf16", "fp16": self.name == "fp16"}


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 or AMX-BF16): there bf16 training runs
    about 3x faster than fp32 (measured on the 2-core EPYC dev machine: 89 vs 32 tok/s, SmolLM2-135M LoRA)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(compute_type: ComputeType) -> Precision:
    """auto = bf16 on a CUDA GPU that supports it or on a CPU with native bf16 instructions, else fp32.
    fp16 needs a GPU; bf16 and pure_bf16 also run (slowly, emulated) on other CPUs when asked for explicitly."""
    has_cuda = torch.cuda.is_available()
    if compute_type == "auto":
        native_bf16 = torch.cuda.is_bf16_supported() if has_cuda else cpu_has_native_bf16()
        compute_type = "bf16" if native_bf16 else "fp32"
    if compute_type == "fp16" and not has_cuda:
        raise EngineError(
            "compute_type fp16 needs a CUDA GPU (fp16 mixed precision does not run on CPU)",
            "set compute_type to auto, fp32 or bf16 on this machine",
        )
    if compute_type in ("bf16", "pure_bf16") and has_cuda and not torch.cuda.is_bf16_supported():
        raise EngineError(
            f"compute_type {compute_type} is not supported by this GPU (bf16 needs an Ampere or newer NVIDIA GPU)",
            "set compute_type to fp16 or auto",
        )
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32, "pure_bf16": torch.bfloat16}
    return Precision(compute_type, dtypes[compute_type])


FLASH_HINT = ("install flash-attn on a CUDA machine (pip install 'tunesmith[flash]'), or set attn_implementation "
              "to sdpa: PyTorch's own attention, which uses flash kernels on the GPU where it can")


def resolve_attention(requested: Attention, packing: bool = True, half_precision: bool = True) -> str:
    """auto = flash_attention_2 when flash-attn is installed and a CUDA GPU is visible; else, on a CUDA GPU with
    packed bf16/fp16 batches, tunesmith_varlen (PyTorch's own varlen FlashAttention kernel); else sdpa.
    Asking for an implementation that cannot run here is an error, never a silent fallback."""
    from backend.engine.attention import VARLEN, register_varlen_attention, varlen_problem

    has_flash = importlib.util.find_spec("flash_attn") is not None
    has_cuda = torch.cuda.is_available()
    if requested == "auto":
        if has_flash and has_cuda:
            return "flash_attention_2"
        if packing and half_precision and varlen_problem() is None:
            register_varlen_attention()
            return VARLEN
        return "sdpa"
    if requested == "flash_attention_2" and not has_flash:
        raise EngineError("attn_implementation flash_attention_2 needs the flash-attn package, which is not installed",
                          FLASH_HINT)
    if requested == "flash_attention_2" and not has_cuda:
        raise EngineError("attn_implementation flash_attention_2 needs a CUDA GPU and none is visible", FLASH_HINT)
    if requested == VARLEN:
        problem = varlen_problem() or (None if half_precision else "runs in bf16/fp16 only, and compute_type is fp32")
        if problem:
            raise EngineError(f"attn_implementation {VARLEN} (PyTorch's varlen FlashAttention kernel) {problem}",
                              "set attn_implementation to sdpa or auto")
        register_varlen_attention()
    return requested


def describe_attention(implementation: str, packing: bool) -> str:
    """What the active implementation does with this run's batches, for the run log."""
    from backend.engine.attention import VARLEN

    if implementation == VARLEN:
        return f"{VARLEN} (torch varlen FlashAttention kernel; packed rows split by cu_seqlens, no mask)"
    if implementation.startswith("flash_attention"):
        return f"{implementation} (flash-attn varlen kernel{'; packed rows split by cu_seqlens' if packing else ''})"
    if implementation == "sdpa" and packing:
        return ("sdpa (packed rows need a block-diagonal mask, so PyTorch uses its memory-efficient or math kernel, "
                "not flash)")
    return implementation


def resolve_liger(setting: Switch, model_type: str) -> tuple[bool, str]:
    """``(enabled, why)`` for Liger's Triton kernels (RMSNorm, RoPE, SwiGLU): auto = on with a CUDA GPU, the
    liger-kernel package and a model type Liger knows; asking for them where they cannot run is an error."""
    if setting == "off":
        return False, "as configured"
    problem = None
    if not torch.cuda.is_available():
        problem = "needs a CUDA GPU and none is visible"
    elif importlib.util.find_spec("liger_kernel") is None:
        problem = "needs the liger-kernel package, which is not installed (pip install liger-kernel)"
    else:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

        if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
            problem = f"has no kernels for model type {model_type!r}"
    if problem is None:
        return True, "auto: CUDA + liger-kernel" if setting == "auto" else "as configured"
    if setting == "auto":
        return False, f"auto: Liger {problem}"
    raise EngineError(f"use_liger_kernel is on but Liger {problem}", "set use_liger_kernel to auto or off")


def resolve_gradient_checkpointing(setting: Switch, num_params: int, cutoff_len: int) -> tuple[bool, str]:
    """``(enabled, why)``: auto turns it on for models over 1B parameters or cutoff_len >= 4096."""
    if setting != "auto":
        return setting == "on", "as configured"
    big, long = num_params > 1_000_000_000, cutoff_len >= 4096
    reason = f"auto: {num_params / 1e9:.2f}B parameters, cutoff_len {cutoff_len}"
    return big or long, reason


def check_model_dir(model_path: str | Path) -> Path:
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise EngineError(
            f"base model not found: {path} has no config.json",
            "prepare the bundled model (python -m backend.engine prepare-bundled --models-dir DIR) "
            "or set base_model to a local HF-format model directory",
        )
    return path


def load_tokenizer(model_path: str | Path):
    """The tokenizer of a model or adapter dir, with a chat template and a pad token guaranteed."""
    from transformers import AutoTokenizer

    from backend.engine.chat_render import ensure_chat_template

    if not Path(model_path).is_dir():
        check_model_dir(model_path)  # raises the "base model not found" error with its hint
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_path: str | Path, dtype: torch.dtype, **kwargs):
    """Load a causal LM; extra kwargs (quantization_config, device_map) go to from_pretrained."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(check_model_dir(model_path), dtype=dtype, **kwargs)
    model.config.use_cache = False
    return model
