"""DeepSpeed ZeRO-3 through the job runner's launch files and argv on one GPU: exactly one adapter, full-size.

    .venv/bin/python -m pytest -q -m gpu tests/gpu/test_zero3_cuda.py
"""

from __future__ import annotations

import subprocess

import pytest
import torch

from backend.config.rundir import read_resolved_run
from backend.engine_process import engine_env
from backend.jobs.launch import build_launch_command, write_launch_files
from backend.jobs.runner import free_port
from tests.engine.tiny_runs import REPO_ROOT, make_run_dir, read_result

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_zero3_writes_exactly_one_full_size_adapter(tmp_path, tiny_model_dir):
    pytest.importorskip("deepspeed", reason="ZeRO-3 needs the deepspeed package")
    from safetensors.torch import load_file

    run_dir = make_run_dir(tmp_path / "zero3", tiny_model_dir, max_steps=3, save_steps=None,
                           method={"name": "lora", "rank": 8, "targets": ["q_proj", "v_proj"]},
                           distributed={"backend": "deepspeed", "zero_stage": 3})
    config = read_resolved_run(run_dir).config
    assert sorted(write_launch_files(run_dir, config, gpus=[0])) == ["accelerate.yaml", "deepspeed.json"]
    argv = build_launch_command(config, run_dir, gpus=[0], main_process_port=free_port())
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=engine_env({"CUDA_VISIBLE_DEVICES": "0"}), capture_output=True,
                          text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    result = read_result(run_dir)
    assert result["status"] == "succeeded", result
    live = result["distributed"]  # read by the engine from the running DeepSpeed engine
    assert live["backend"] == "deepspeed" and live["zero_stage"] == 3 and live["world_size"] == 1, live

    assert [p.name for p in run_dir.iterdir() if "adapter" in p.name] == ["adapter"]  # no leftover .adapter.tmp
    assert sorted(p.name for p in (run_dir / "adapter").glob("*.safetensors")) == ["adapter_model.safetensors"]
    tensors = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    # gathered from the ZeRO-3 partitions: every matrix at its full shape (2 layers x q/v x A/B), none empty
    assert len(tensors) == 8, sorted(tensors)
    for name, tensor in tensors.items():
        expected = (8, 64) if "lora_A" in name else ((64, 8) if "q_proj" in name else (32, 8))
        assert tuple(tensor.shape) == expected, (name, tuple(tensor.shape))
