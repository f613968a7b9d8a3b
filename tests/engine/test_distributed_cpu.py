"""A real 2-process data-parallel run on CPU (gloo), started through the very argv the job runner builds."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest

from backend.config.rundir import read_resolved_run
from backend.fsio import iter_jsonl
from backend.jobs.launch import build_launch_command, write_launch_files
from backend.jobs.runner import free_port
from tests.engine.tiny_runs import REPO_ROOT, make_run_dir

pytestmark = pytest.mark.slow


def test_two_cpu_processes_train_one_adapter(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path / "ddp", tiny_model_dir, distributed={"num_processes": 2}, max_steps=3,
                           cutoff_len=64, save_steps=None)
    config = read_resolved_run(run_dir).config
    assert write_launch_files(run_dir, config, gpus=[]) == {}  # plain DDP: flags only
    argv = build_launch_command(config, run_dir, gpus=[], main_process_port=free_port())
    assert argv[argv.index("--num_processes") + 1] == "2"

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("RANK", None)
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert log.count("succeeded:") == 2, log[-4000:]  # both ranks ran to the end (only rank 0 writes files)

    adapters = [p for p in run_dir.iterdir() if "adapter" in p.name]
    assert [p.name for p in adapters] == ["adapter"]  # no leftover .adapter.tmp
    assert sorted(p.name for p in (run_dir / "adapter").glob("*.safetensors")) == ["adapter_model.safetensors"]

    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "succeeded" and result["output"] == "adapter"
    rows = [r for r in iter_jsonl(run_dir / "events.jsonl") if "loss" in r]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 3, steps  # only rank 0 writes: no duplicated steps
    assert all(r["loss"] is not None and math.isfinite(r["loss"]) for r in rows), rows
    assert all(r["total_steps"] == 3 for r in rows)
    # 16 examples, 2 per process per step: two processes take 4 steps per epoch (one alone would take 8)
    assert rows[-1]["epoch"] == pytest.approx(0.75), rows[-1]
