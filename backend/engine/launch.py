"""Pure construction of the command that launches a training run. Imports no torch.

The job runner calls :func:`build_launch_command` and spawns the argv it returns (never through a shell).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from backend.config.schema import RunConfig


def accelerate_mixed_precision(config: RunConfig, has_cuda: bool) -> str:
    """What accelerate's --mixed_precision should say; the engine itself picks the model dtype."""
    if not has_cuda:
        return "no"
    if config.compute_type in ("bf16", "fp16"):
        return config.compute_type
    return "no"  # auto: the engine checks what the GPU supports and sets the trainer's precision itself


def build_launch_command(
    config: RunConfig,
    run_dir: Path,
    gpus: Sequence[int] = (),
    python: str = sys.executable,
    main_process_port: int | None = None,
) -> list[str]:
    """argv for ``accelerate launch ... -m backend.engine train --run-dir RUN_DIR``.

    One process per GPU in ``gpus``; with no GPUs the run is a single CPU process.
    """
    argv = [python, "-m", "accelerate.commands.launch"]
    if gpus:
        argv += [
            "--num_processes", str(len(gpus)),
            "--gpu_ids", ",".join(str(g) for g in gpus),
        ]
        if len(gpus) > 1:
            argv += ["--multi_gpu"]
            if main_process_port is not None:
                argv += ["--main_process_port", str(main_process_port)]
    else:
        argv += ["--cpu", "--num_processes", "1"]
    argv += [
        "--num_machines", "1",
        "--mixed_precision", accelerate_mixed_precision(config, has_cuda=bool(gpus)),
        "--dynamo_backend", "no",
        "-m", "backend.engine", "train",
        "--run-dir", str(run_dir),
    ]
    return argv


def build_engine_command(action: str, run_dir: Path, python: str = sys.executable) -> list[str]:
    """argv for a single-process engine action such as ``merge``."""
    return [python, "-m", "backend.engine", action, "--run-dir", str(run_dir)]
