"""QLoRA 4-bit through the real engine CLI on a CUDA GPU: the base loads quantized, the adapter trains and is saved.

    .venv/bin/python -m pytest -q -m gpu tests/gpu/test_qlora_cuda.py
"""

from __future__ import annotations

import re

import pytest
import torch

from backend.fsio import iter_jsonl
from tests.engine.tiny_runs import make_run_dir, read_result, run_engine

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_qlora_4bit_trains_an_adapter_on_a_quantized_base(tmp_path, tiny_model_dir):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs the bitsandbytes package")
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    run_dir = make_run_dir(tmp_path / "qlora", tiny_model_dir, max_steps=4, save_steps=None, learning_rate=1e-2,
                           method={"name": "qlora", "bits": 4, "quant_type": "nf4", "rank": 8,
                                   "targets": ["q_proj", "v_proj"]})
    proc = run_engine("train", "--run-dir", str(run_dir))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    result = read_result(run_dir)
    assert result["status"] == "succeeded" and result["output"] == "adapter", result
    assert result["quantization"]["bits"] == 4 and result["quantization"]["quant_type"] == "nf4", result

    # the base was quantized: the loaded model holds far fewer stored parameters than the fp32 original
    counts = re.search(r"method qlora: ([\d,]+) of ([\d,]+) parameters trainable", log)
    assert counts, log[-4000:]
    trainable, stored = (int(n.replace(",", "")) for n in counts.groups())
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).num_parameters()
    assert stored < original + trainable, (stored, original, trainable)

    # the adapter learned: LoRA B starts at zero, after 4 steps at lr 1e-2 it is not
    tensors = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    b_mats = {k: v for k, v in tensors.items() if "lora_B" in k}
    assert {k.split(".")[-3] for k in b_mats} == {"q_proj", "v_proj"}, sorted(tensors)
    assert all(v.abs().max().item() > 0 for v in b_mats.values()), {k: v.abs().max().item() for k, v in b_mats.items()}

    rows = [r for r in iter_jsonl(run_dir / "events.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r.get("gpu_mem", 0) > 0 for r in rows), rows  # CUDA runs report their peak memory
