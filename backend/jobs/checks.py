"""Can this machine run a config? The submit-time checks that turn "fails minutes later in a traceback" into a
422 naming the field, what is missing and what to pick instead. No torch: packages are only looked up
(``importlib.util.find_spec``) and GPUs come from nvidia-smi (``backend.jobs.gpus``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from backend.config.schema import RunConfig
from backend.config.trackers import TRACKER_PACKAGES
from backend.errors import Invalid
from backend.jobs.gpus import GpuInfo


class JobConfigError(Invalid):
    """A config that is valid on its own but cannot run here (unknown dataset, no GPU for fp16...). ``loc`` is the
    field's place in the run config; the API answers 422 with it under ``body``."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message, loc=("body", *loc))
        self.config_loc = tuple(loc)

    @property
    def loc(self) -> tuple:
        return self.config_loc


BNB_INSTALL = "pip install bitsandbytes"
DEEPSPEED_INSTALL = "DS_BUILD_OPS=0 pip install deepspeed"


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check_hardware(config: RunConfig, gpus: list[int], gpu_details: Callable[[], list[GpuInfo]]) -> None:
    """Every device/package requirement of ``config`` against the visible ``gpus`` (indexes). ``gpu_details``
    is called only when a check needs more than the indexes (the compute capability for bf16)."""
    has_gpu = bool(gpus)
    check_distributed(config, gpus)
    check_precision(config, has_gpu, gpu_details)
    # bitsandbytes has CPU kernels: QLoRA bases and 8-bit optimizers run without a GPU too (slowly)
    if config.method.name == "qlora" and not installed("bitsandbytes"):
        raise JobConfigError(("method",), f"QLoRA needs the bitsandbytes package, which is not installed: "
                             f"{BNB_INSTALL}, or use method 'lora'")
    if config.optimizer.endswith("_8bit") and not installed("bitsandbytes"):
        raise JobConfigError(("optimizer",), f"optimizer {config.optimizer!r} needs the bitsandbytes package, "
                             f"which is not installed: {BNB_INSTALL}, or use 'adamw_torch'")
    if config.attn_implementation == "flash_attention_2":
        if not installed("flash_attn"):
            raise JobConfigError(("attn_implementation",), "flash_attention_2 needs the flash-attn package, which "
                                 "is not installed: pip install 'tunesmith[flash]' on a CUDA machine, or use 'sdpa' "
                                 "(PyTorch's own attention, with flash kernels on the GPU) or 'auto'")
        if not has_gpu:
            raise JobConfigError(("attn_implementation",), "flash_attention_2 needs a CUDA GPU and this machine "
                                 "has none; use 'sdpa' or 'auto'")
    check_gpu_kernels(config, has_gpu)
    if config.report_to != "none" and not installed(TRACKER_PACKAGES[config.report_to][0]):
        module, install = TRACKER_PACKAGES[config.report_to]
        raise JobConfigError(("report_to",), f"report_to {config.report_to!r} needs the {module} package, which is "
                             f"not installed: {install}, or set report_to to 'none'")


def check_precision(config: RunConfig, has_gpu: bool, gpu_details: Callable[[], list[GpuInfo]]) -> None:
    """fp16 needs a GPU; bf16 / pure_bf16 on a GPU need compute capability 8.0+ (Ampere or newer)."""
    if not has_gpu and config.compute_type == "fp16":
        raise JobConfigError(("compute_type",), "fp16 needs a CUDA GPU and this machine has none; "
                             "use 'auto', 'bf16' or 'fp32'")
    if has_gpu and config.compute_type in ("bf16", "pure_bf16"):
        wanted = set(config.distributed.gpus or [])
        old = [g for g in gpu_details() if (not wanted or g.index in wanted)
               and g.compute_capability is not None and g.compute_capability < (8, 0)]
        if old:
            names = ", ".join(f"GPU {g.index} ({g.name}, compute capability {g.compute_capability[0]}."
                              f"{g.compute_capability[1]})" for g in old)
            raise JobConfigError(("compute_type",), f"{config.compute_type} needs a GPU with bf16 support (compute "
                                 f"capability 8.0+, Ampere or newer); {names} has none. Use 'fp16' or 'auto' (which "
                                 "picks fp16 there)")


def check_distributed(config: RunConfig, available: list[int]) -> None:
    """Can this machine run ``config.distributed``?"""
    dist = config.distributed
    if dist.gpus is None and dist.backend not in ("deepspeed", "fsdp") and dist.num_processes is None:
        return  # the default: whatever GPUs there are, or one CPU process
    if dist.gpus is not None:
        missing = [g for g in dist.gpus if g not in available]
        if missing:
            raise JobConfigError(("distributed", "gpus"), f"GPU(s) {missing} do not exist here; visible GPUs: "
                                 f"{available or 'none'} (see GET /api/v1/health), or leave gpus empty to use all")
    elif available and dist.num_processes is not None and dist.num_processes > len(available):
        raise JobConfigError(("distributed", "num_processes"), f"num_processes {dist.num_processes} is more than the "
                             f"{len(available)} GPU(s) here; use at most {len(available)} or leave it empty")
    if dist.backend == "fsdp" and not available and total_cpu_processes(config) < 2:
        raise JobConfigError(("distributed", "num_processes"), "backend 'fsdp' shards the model across processes, "
                             "and without a GPU this job has one CPU process: set num_processes to 2 or more "
                             "(CPU processes over gloo), or use backend 'auto'")
    if dist.backend == "fsdp" and dist.offload_params and not available:
        raise JobConfigError(("distributed", "offload_params"), "FSDP's offload_params moves parameters from the "
                             "GPU into CPU memory, and without a GPU they already are there (torch's CPU offload "
                             "policy needs an accelerator): turn offload_params off")
    if dist.backend == "deepspeed" and not installed("deepspeed"):
        raise JobConfigError(("distributed", "backend"), "backend 'deepspeed' needs the deepspeed package, which is "
                             f"not installed: {DEEPSPEED_INSTALL}, or use backend 'fsdp'")


def total_cpu_processes(config: RunConfig) -> int:
    """Processes of a job that runs without GPUs: num_processes (default 1) on each machine."""
    return (config.distributed.num_processes or 1) * config.distributed.num_machines


def check_gpu_kernels(config: RunConfig, has_gpu: bool) -> None:
    """Liger kernels and the torch varlen attention asked for explicitly: is there a GPU (and the package)?"""
    if config.use_liger_kernel == "on":
        if not has_gpu:
            raise JobConfigError(("use_liger_kernel",), "use_liger_kernel 'on' needs a CUDA GPU (Liger's kernels are "
                                 "Triton GPU code) and this machine has none; use 'auto' or 'off'")
        if not installed("liger_kernel"):
            raise JobConfigError(("use_liger_kernel",), "use_liger_kernel 'on' needs the liger-kernel package, which "
                                 "is not installed: pip install liger-kernel (or 'tunesmith[gpu]'), or use 'auto'")
    if config.attn_implementation == "tunesmith_varlen" and not has_gpu:
        raise JobConfigError(("attn_implementation",), "tunesmith_varlen (PyTorch's varlen FlashAttention kernel) "
                             "needs a CUDA GPU and this machine has none; use 'sdpa' or 'auto'")
