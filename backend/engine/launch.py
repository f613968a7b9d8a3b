"""Pure construction of the command that launches a training run. Imports no torch.

The job runner calls :func:`build_launch_command` and spawns the argv it returns (never through a shell).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from backend.config.schema import RunConfig
from backend.engine.distributed import ACCELERATE_FILE, effective_backend, total_processes


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

    ``gpus`` are the GPUs the job was given (see ``backend.engine.distributed.select_gpus``); processes follow
    ``config.distributed`` (default: one per GPU, one CPU process without GPUs). DeepSpeed and FSDP runs read
    ``RUN_DIR/accelerate.yaml`` (written by ``write_launch_files``); plain DDP and single runs need only flags.
    Several CPU processes are started like several GPU ones (``--multi_gpu``: torchrun spawns them; the engine
    sees no CUDA and accelerate joins them over gloo): ``--cpu`` would start only one process.
    ``main_process_port`` overrides ``config.distributed.main_process_port``.
    """
    dist = config.distributed
    total = total_processes(dist, gpus)
    uses_config_file = effective_backend(dist, gpus) in ("deepspeed", "fsdp")
    argv = [python, "-m", "accelerate.commands.launch"]
    if uses_config_file:
        argv += ["--config_file", str(Path(run_dir) / ACCELERATE_FILE)]
    argv += ["--num_processes", str(total)]
    if gpus:
        argv += ["--gpu_ids", ",".join(str(g) for g in gpus)]
    if not uses_config_file:  # the config file names the distributed type itself; a flag would override it
        if total > 1:
            argv += ["--multi_gpu"]
        elif not gpus:
            argv += ["--cpu"]
    argv += ["--num_machines", str(dist.num_machines)]
    if dist.num_machines > 1:
        argv += ["--machine_rank", str(dist.machine_rank), "--main_process_ip", str(dist.main_process_ip)]
    port = main_process_port if main_process_port is not None else dist.main_process_port
    if port is not None and total > 1:
        argv += ["--main_process_port", str(port)]
    argv += [
        "--mixed_precision", accelerate_mixed_precision(config, has_cuda=bool(gpus)),
        "--dynamo_backend", "no",
        "-m", "backend.engine", "train",
        "--run-dir", str(run_dir),
    ]
    return argv


def build_engine_command(action: str, run_dir: Path, python: str = sys.executable) -> list[str]:
    """argv for a single-process engine action such as ``merge``."""
    return [python, "-m", "backend.engine", action, "--run-dir", str(run_dir)]
