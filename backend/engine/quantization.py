"""QLoRA's quantized base model: the bitsandbytes config it is loaded with, the facts a run reports about it
(``engine.quantization``), and the way back to full precision for a merge.

bitsandbytes has CPU kernels for 4-bit (nf4/fp4) and 8-bit (LLM.int8) weights, so QLoRA runs without a GPU too
(slowly). Merging an adapter into ``Linear4bit`` layers can silently drop it (measured on SmolLM2-135M on CPU: the
merged model scored the base's loss) and would leave a quantized model anyway, so a merge first dequantizes the
base through the model API and merges into that full-precision copy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from backend.config.schema import QLoraMethod
from backend.engine.failures import EngineError

BNB_INSTALL = "pip install bitsandbytes (a regular dependency of tunesmith: pip install -e .)"


def check_bitsandbytes_installed(what: str) -> None:
    """``what`` (e.g. "QLoRA", "optimizer adamw_8bit") needs bitsandbytes: raise naming the install command."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise EngineError(f"{what} needs the bitsandbytes package, which is not installed", BNB_INSTALL)


def build_quantization_config(method: QLoraMethod, compute_dtype: torch.dtype):
    """The BitsAndBytesConfig a QLoRA base model is loaded with (the same one again for its merge)."""
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


def quantized_device_map() -> dict:
    """bitsandbytes places the quantized weights at load time: this process's GPU, or the CPU without one."""
    import os

    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": "cpu"}


def quantization_facts(model) -> dict:
    """``{"bits", "quant_type", "quantized_layers"}`` read from the loaded model's layers (not from the config):
    proof that the base really is 4/8-bit. Raises when a QLoRA base has no quantized layer at all."""
    import bitsandbytes as bnb

    four = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    eight = [m for m in model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    if four:
        quant_type = getattr(four[0].weight, "quant_type", None) or four[0].weight.quant_state.quant_type
        return {"bits": 4, "quant_type": quant_type, "quantized_layers": len(four)}
    if eight:
        return {"bits": 8, "quant_type": "llm_int8", "quantized_layers": len(eight)}
    raise EngineError("QLoRA: the base model loaded without any bitsandbytes-quantized layer",
                      "check that bitsandbytes supports this device (python -m bitsandbytes)")


def load_dequantized_base(base_dir: Path, method: QLoraMethod, compute_dtype: torch.dtype):
    """The base model exactly as a QLoRA run trained against it (quantized the same way), then dequantized
    through transformers' ``model.dequantize()`` (bitsandbytes' own kernels; raw CPU 4-bit tensors are
    repacked after a forward, so they are never read directly) and cast to fp32 for an exact merge."""
    from backend.engine.model import load_model

    model = load_model(base_dir, compute_dtype, quantization_config=build_quantization_config(method, compute_dtype),
                       device_map=quantized_device_map())
    quantization_facts(model)  # the base really is quantized, else the merge below would prove nothing
    model = model.dequantize(dtype=torch.float32)
    return model.to(torch.float32)
