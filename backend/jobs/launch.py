"""Launch planning for a training run: the ``accelerate launch`` argv and the files it reads. Pure; imports no torch.

Lives on the jobs side because only the web process uses it (the runner spawns the argv, ``POST /jobs/preview``
shows it); the engine only receives what it plans. ``RunConfig.distributed`` + the GPUs a job is given ->
``accelerate.yaml`` (and, for DeepSpeed, ``deepspeed.json``) in the run dir, and :func:`build_launch_command`'s
argv (never run through a shell). Plain DDP and single-process runs need no file: the argv passes flags instead.
DeepSpeed values that the trainer knows better (batch sizes, accumulation, clipping, precision) are ``"auto"``:
transformers fills them in from the trainer's arguments, so the JSON and the run config never disagree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml

from backend.config.distributed import DistributedConfig
from backend.config.schema import RunConfig
from backend.engine_process import engine_module_args
from backend.fsio import atomic_write_text

ACCELERATE_FILE = "accelerate.yaml"
DEEPSPEED_FILE = "deepspeed.json"

EffectiveBackend = Literal["none", "ddp", "deepspeed", "fsdp"]


def select_gpus(dist: DistributedConfig, available: Sequence[int]) -> list[int]:
    """The GPUs a job runs on: ``dist.gpus`` when set (else every available one), cut to ``num_processes``."""
    chosen = list(dist.gpus) if dist.gpus is not None else list(available)
    if dist.num_processes is not None and chosen:
        chosen = chosen[: dist.num_processes]
    return chosen


def processes_per_machine(dist: DistributedConfig, gpus: Sequence[int]) -> int:
    """``num_processes`` when set; else one per GPU; else (CPU) one."""
    if dist.num_processes is not None:
        return dist.num_processes
    return max(1, len(gpus))


def total_processes(dist: DistributedConfig, gpus: Sequence[int]) -> int:
    """Processes across all machines (what accelerate calls ``num_processes``)."""
    return processes_per_machine(dist, gpus) * dist.num_machines


def effective_backend(dist: DistributedConfig, gpus: Sequence[int]) -> EffectiveBackend:
    """What actually runs: deepspeed/fsdp as asked; ddp for several processes; none for a single one."""
    if dist.backend in ("deepspeed", "fsdp"):
        return dist.backend
    return "ddp" if total_processes(dist, gpus) > 1 else "none"


def build_deepspeed_config(dist: DistributedConfig) -> dict:
    """DeepSpeed JSON: ZeRO stage + CPU offload from ``dist``; everything the trainer decides is ``"auto"``."""
    zero: dict = {"stage": dist.zero_stage}
    if dist.zero_stage >= 1:
        zero.update(overlap_comm=True, contiguous_gradients=True, reduce_bucket_size="auto")
    if dist.zero_stage == 3:
        zero.update(
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            stage3_max_live_parameters=1_000_000_000,
            stage3_max_reuse_distance=1_000_000_000,
            sub_group_size=1_000_000_000,
            # save_model gathers the shards into one ordinary safetensors file on rank 0
            stage3_gather_16bit_weights_on_model_save=True,
        )
    if dist.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if dist.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
                 "hysteresis": 2, "min_loss_scale": 1},
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "steps_per_print": 1_000_000,  # progress goes to events.jsonl, not DeepSpeed's log
        "wall_clock_breakdown": False,
    }


def build_fsdp_config(dist: DistributedConfig) -> dict:
    """accelerate's ``fsdp_config`` block: FSDP2 (fully_shard), full shard, one unit per decoder layer."""
    return {
        "fsdp_version": dist.fsdp_version,
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # the model's _no_split_modules (its decoder layer)
        "fsdp_reshard_after_forward": True,  # full shard (False would be SHARD_GRAD_OP)
        "fsdp_offload_params": dist.offload_params,
        "fsdp_cpu_ram_efficient_loading": True,  # rank 0 reads the weights, the others receive them
        "fsdp_sync_module_states": True,  # required by cpu_ram_efficient_loading
        "fsdp_state_dict_type": "FULL_STATE_DICT",  # save_model writes one ordinary safetensors on rank 0
        "fsdp_activation_checkpointing": False,  # the trainer's gradient_checkpointing does this instead
    }


def build_accelerate_config(config: RunConfig, run_dir: Path, gpus: Sequence[int],
                            mixed_precision: str = "no") -> dict | None:
    """accelerate's config YAML (as a dict) for DeepSpeed/FSDP runs; None when flags suffice (none/ddp)."""
    dist = config.distributed
    backend = effective_backend(dist, gpus)
    if backend not in ("deepspeed", "fsdp"):
        return None
    doc: dict = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "DEEPSPEED" if backend == "deepspeed" else "FSDP",
        "num_processes": total_processes(dist, gpus),
        "num_machines": dist.num_machines,
        "machine_rank": dist.machine_rank,
        "gpu_ids": ",".join(str(g) for g in gpus) if gpus else "all",
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
        "debug": False,
    }
    if dist.main_process_ip:
        doc["main_process_ip"] = dist.main_process_ip
    if dist.main_process_port:
        doc["main_process_port"] = dist.main_process_port
    if backend == "deepspeed":
        # With a deepspeed_config_file accelerate refuses mixed_precision/zero_stage/... in this file: the JSON
        # (its "auto" values filled in by the trainer) is the single place for them.
        ds: dict = {"deepspeed_config_file": str(Path(run_dir) / DEEPSPEED_FILE), "zero3_init_flag": dist.zero_stage == 3}
        if dist.num_machines > 1:
            ds["deepspeed_multinode_launcher"] = "standard"  # torchrun on every machine, no pdsh/ssh
        doc["deepspeed_config"] = ds
    else:
        doc["mixed_precision"] = mixed_precision
        doc["fsdp_config"] = build_fsdp_config(dist)
    return doc


def render_launch_files(config: RunConfig, run_dir: Path, gpus: Sequence[int],
                        mixed_precision: str = "no") -> dict[str, str]:
    """File name -> text of every launch file this run needs (empty for single-process and plain DDP runs)."""
    files: dict[str, str] = {}
    accelerate_doc = build_accelerate_config(config, run_dir, gpus, mixed_precision)
    if accelerate_doc is None:
        return files
    files[ACCELERATE_FILE] = yaml.safe_dump(accelerate_doc, sort_keys=False)
    if accelerate_doc["distributed_type"] == "DEEPSPEED":
        files[DEEPSPEED_FILE] = json.dumps(build_deepspeed_config(config.distributed), indent=2) + "\n"
    return files


def write_launch_files(run_dir: Path, config: RunConfig, gpus: Sequence[int]) -> dict[str, Path]:
    """Write the launch files into ``run_dir`` atomically; return name -> path (empty when none are needed)."""
    run_dir = Path(run_dir)
    written = {}
    for name, text in render_launch_files(config, run_dir, gpus, accelerate_mixed_precision(config, bool(gpus))).items():
        atomic_write_text(run_dir / name, text)
        written[name] = run_dir / name
    return written


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

    ``gpus`` are the GPUs the job was given (see :func:`select_gpus`); processes follow
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
        *engine_module_args("train", "--run-dir", str(run_dir)),
    ]
    return argv

