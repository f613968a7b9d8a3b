"""What an export is (pydantic, torch-free): GGUF with a quantization, or safetensors with a dtype and shard size;
where llama.cpp's converter lives; and which packages each choice needs (checked before anything starts, so a
missing one is a 422 with the install command, never a silent f16).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from backend.errors import Invalid

# written by the converter itself (convert_hf_to_gguf --outtype) / by llama.cpp's quantizer (llama_model_quantize)
CONVERTER_TYPES = ("f16", "bf16", "q8_0")
QUANTIZER_TYPES = ("q4_k_m", "q5_k_m", "q6_k")
Quantization = Literal["f16", "bf16", "q8_0", "q4_k_m", "q5_k_m", "q6_k"]
INSTALL_COMMAND = "make gguf"  # builds llama-cpp-python (CPU) and unpacks llama.cpp's converter into the venv
_SIZE = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?(KB|MB|GB|KiB|MiB|GiB)$")


class GgufExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["gguf"] = Field(description="A single GGUF file for llama.cpp, Ollama, LM Studio.")
    quantization: Quantization = Field(
        "q8_0", description="f16/bf16: unquantized; q8_0: 8-bit, near-lossless; q4_k_m: the 4-bit size people "
                            "run; q5_k_m/q6_k in between. k-quants need llama-cpp-python.")
    modelfile: bool = Field(True, description="Add an Ollama Modelfile (TEMPLATE, stop tokens, training system prompt).")
    model_card: bool = Field(True, description="Add a README.md model card (base model, data, hyperparameters, losses).")

    @property
    def key(self) -> str:
        return f"gguf-{self.quantization}" + ("" if self.modelfile else "-nomodelfile") + \
            ("" if self.model_card else "-nocard")


class SafetensorsExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["safetensors"] = Field(description="A standalone Hugging Face model (LoRA merged into the base).")
    dtype: Literal["bf16", "fp16", "fp32"] | None = Field(
        None, description="Weights dtype; default: the dtype the base model was published in.")
    max_shard_size: str = Field("2GB", max_length=12, description="Largest safetensors shard, e.g. 2GB, 500MB, 1GiB.",
                                pattern=_SIZE.pattern)
    model_card: bool = Field(True, description="Add a README.md model card (base model, data, hyperparameters, losses).")

    @property
    def key(self) -> str:
        return f"safetensors-{self.dtype or 'base'}-{self.max_shard_size}" + ("" if self.model_card else "-nocard")


ExportSpec = Annotated[Union[GgufExport, SafetensorsExport], Field(discriminator="format")]


def converter_script() -> Path:
    """llama.cpp's ``convert_hf_to_gguf.py`` (from the llama-cpp-python sdist, unpacked by ``make gguf``)."""
    folder = os.environ.get("TUNESMITH_LLAMA_CPP_DIR") or str(Path(sys.prefix) / "share" / "llama.cpp")
    return Path(folder) / "convert_hf_to_gguf.py"


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None  # finds the package without importing it


def check_tools(spec: GgufExport | SafetensorsExport) -> None:
    """Invalid (422) naming the install command when a package this export needs is missing."""
    if spec.format != "gguf":
        return
    if not converter_script().is_file():
        raise Invalid(f"GGUF export needs llama.cpp's converter, which is not installed ({converter_script()})",
                      loc=("body", "format"), hint=f"run `{INSTALL_COMMAND}` (or set TUNESMITH_LLAMA_CPP_DIR to a "
                                                   "llama.cpp checkout), then export again")
    if spec.quantization in QUANTIZER_TYPES and not llama_cpp_installed():
        raise Invalid(f"quantization {spec.quantization!r} needs llama.cpp's quantizer from llama-cpp-python, which "
                      "is not installed", loc=("body", "quantization"),
                      hint=f"run `{INSTALL_COMMAND}`, or export f16/bf16/q8_0, which the converter writes itself")
