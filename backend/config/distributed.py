"""How a run is spread over processes, GPUs and machines (``RunConfig.distributed``). Pure pydantic, no torch.

The defaults describe today's behaviour: one process per GPU the job is given (plain DDP when there are
several), a single CPU process when there is no GPU. DeepSpeed ZeRO and FSDP2 are opt-in; the files they need
(``accelerate.yaml``, ``deepspeed.json``) are written into the run dir by ``backend.jobs.launch``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backend = Literal["auto", "ddp", "deepspeed", "fsdp"]


class DistributedConfig(BaseModel):
    """Processes, GPUs, machines and the sharding backend of a run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: Backend = Field(
        "auto",
        description="auto = plain DDP when the run has more than one process, nothing for one process; "
        "ddp = data parallel (full copy of the model per GPU); deepspeed = DeepSpeed ZeRO (needs the deepspeed "
        "package; CUDA GPUs, or num_processes CPU processes); fsdp = PyTorch FSDP2, parameters fully sharded (CUDA "
        "GPUs, or num_processes >= 2 CPU processes).",
    )
    zero_stage: Literal[0, 1, 2, 3] = Field(
        2,
        description="DeepSpeed ZeRO stage (backend deepspeed only): 1 shards optimizer state, 2 also gradients, "
        "3 also the parameters; 0 = no sharding.",
    )
    offload_optimizer: bool = Field(
        False,
        description="DeepSpeed: keep optimizer state in CPU memory (ZeRO stage 1-3). Slower, saves GPU memory.",
    )
    offload_params: bool = Field(
        False,
        description="Keep parameters in CPU memory between uses: DeepSpeed ZeRO stage 3, or FSDP (which then "
        "offloads parameters, gradients and optimizer state).",
    )
    fsdp_version: Literal[2] = Field(
        2, description="FSDP version (backend fsdp only): 2 = per-parameter sharding (fully_shard), full shard."
    )
    num_processes: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Processes on this machine. None = one per GPU chosen for the job; on a machine without "
        "a GPU, 1. Setting it above 1 without a GPU runs that many CPU processes (gloo), useful for testing.",
    )
    gpus: list[int] | None = Field(
        None,
        min_length=1,
        description="Indexes of the GPUs to use (as nvidia-smi numbers them), e.g. [0, 1]. None = all visible GPUs.",
    )
    num_machines: int = Field(1, ge=1, le=1024, description="Machines taking part (multi-node training).")
    machine_rank: int = Field(0, ge=0, le=1023, description="This machine's rank, 0 .. num_machines-1 (0 = main).")
    main_process_ip: str | None = Field(
        None, min_length=1, max_length=255,
        description="Address of the rank-0 machine; required when num_machines > 1.",
    )
    main_process_port: int | None = Field(
        None, ge=1, le=65535, description="TCP port of the rank-0 process for the rendezvous. None = accelerate's default (29500)."
    )

    @model_validator(mode="after")
    def _check_combination(self) -> DistributedConfig:
        if self.offload_params and not (
            (self.backend == "deepspeed" and self.zero_stage == 3) or self.backend == "fsdp"
        ):
            raise ValueError("offload_params needs backend 'deepspeed' with zero_stage 3, or backend 'fsdp'")
        if self.offload_optimizer and not (self.backend == "deepspeed" and self.zero_stage >= 1):
            raise ValueError("offload_optimizer needs backend 'deepspeed' with zero_stage 1, 2 or 3")
        if self.machine_rank >= self.num_machines:
            raise ValueError(f"machine_rank must be below num_machines ({self.num_machines})")
        if self.num_machines > 1 and not self.main_process_ip:
            raise ValueError("main_process_ip (the rank-0 machine's address) is required when num_machines > 1")
        if self.gpus is not None and len(set(self.gpus)) != len(self.gpus):
            raise ValueError("gpus lists a GPU twice")
        if self.gpus is not None and any(g < 0 for g in self.gpus):
            raise ValueError("gpus must be GPU indexes (0 or more)")
        if self.gpus is not None and self.num_processes is not None and self.num_processes > len(self.gpus):
            raise ValueError(f"num_processes ({self.num_processes}) is more than the GPUs listed in gpus ({len(self.gpus)})")
        return self
