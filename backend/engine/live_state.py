"""What really runs, read from the live accelerate / DeepSpeed / FSDP / optimizer objects once the trainer has
prepared them (never copied from the run config), and the one place that makes FSDP2 real on CPUs.

Why forcing is needed: accelerate switches to FSDP only for GPU-like devices. Under ``accelerate launch`` with
``distributed_type: FSDP`` on CPUs the state silently says MULTI_CPU and the model is wrapped in plain DDP - no
error, no warning. So without CUDA the engine sets both shared states (PartialState and AcceleratorState; patching
only one reverts to MULTI_CPU and breaks save_model) to FSDP with a plugin built from the launcher's ``FSDP_*``
environment, before the trainer prepares the model. Then the live state is checked: a job that asked for FSDP
and whose parameters are not sharded fails (``check_as_asked``), it never passes as DDP.

``engine.distributed`` = ``{"backend": "ddp"|"deepspeed"|"fsdp"|"none", "world_size", "zero_stage"?,
"offload"?: ["optimizer", "params"], "sharded_params"?}``; ``engine.optimizer``: the optimizer that really steps.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import TrainerCallback

from backend.config.schema import RunConfig
from backend.engine.failures import EngineError
from backend.engine.log_lines import describe_result


def launched_for_fsdp() -> bool:
    """``accelerate launch`` with ``distributed_type: FSDP`` exports ACCELERATE_USE_FSDP=true to every process."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def force_fsdp_on_cpu(trainer) -> bool:
    """Without CUDA, turn the trainer's accelerate state from MULTI_CPU into FSDP (see the module doc); True
    when it did. Call after the trainer exists (its Accelerator is created in __init__) and before train()."""
    import torch
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if not launched_for_fsdp() or state.distributed_type == DistributedType.FSDP or torch.cuda.is_available():
        return False
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise EngineError(f"backend fsdp: accelerate chose {state.distributed_type.value} on this CPU machine, "
                          "not FSDP nor MULTI_CPU", "set distributed.num_processes to 2 or more")
    plugin = FullyShardedDataParallelPlugin()  # reads FSDP_VERSION, FSDP_AUTO_WRAP_POLICY, ... from the launcher
    if type(plugin.cpu_offload).__name__ == "CPUOffloadPolicy":  # torch's policy needs an accelerator to offload from
        raise EngineError("FSDP offload_params needs a GPU: without one the parameters already are in CPU memory",
                          "turn distributed.offload_params off")
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    AcceleratorState._shared_state["fsdp_plugin"] = plugin
    AcceleratorState._shared_state["distributed_type"] = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    trainer.is_fsdp_enabled = True  # the trainer read this flag from the state before we changed it
    return True


def _backend_name(distributed_type) -> str:
    from accelerate.utils import DistributedType

    if distributed_type == DistributedType.DEEPSPEED:
        return "deepspeed"
    if distributed_type == DistributedType.FSDP:
        return "fsdp"
    return "none" if distributed_type == DistributedType.NO else "ddp"


def _deepspeed_facts(engine) -> dict:
    """Stage, offload and sharding as the running DeepSpeed engine has them (its config after "auto" filling,
    and its partitioned parameters: under ZeRO-3 each process holds only ``ds_tensor``, a slice of ``ds_numel``)."""
    offload = []
    if engine.zero_cpu_offload():
        offload.append("optimizer")
    param_offload = engine.zero_offload_param()
    if param_offload is not None and str(getattr(param_offload, "device", "none")).endswith(("cpu", "nvme")):
        offload.append("params")
    params = list(engine.module.parameters())
    full = sum(getattr(p, "ds_numel", p.numel()) for p in params)
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in params)
    return {"zero_stage": int(engine.zero_optimization_stage()), "offload": offload, "sharded_params": local < full}


def _fsdp_facts(model, plugin) -> dict:
    """FSDP2 turns each parameter into a DTensor; each process holds ``to_local()``, its share of it (all of it
    when there is one process). ``sharded_params``: every parameter is FSDP-managed; ``local_share``: the part
    of the model this process holds (about 1/world_size)."""
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    dtensors = [p for p in params if isinstance(p, DTensor)]
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params)
    offload = ["params"] if plugin is not None and type(plugin.cpu_offload).__name__ == "CPUOffloadPolicy" else []
    return {"fsdp_version": getattr(plugin, "fsdp_version", None), "offload": offload,
            "sharded_params": bool(params) and len(dtensors) == len(params),
            "local_share": round(local / max(1, sum(p.numel() for p in params)), 4),
            "dtensor_params": len(dtensors), "params": len(params)}


def distributed_facts(trainer) -> dict:
    """``engine.distributed`` from the prepared trainer (call once training has begun)."""
    state = trainer.accelerator.state
    backend = _backend_name(state.distributed_type)
    facts: dict = {"backend": backend, "world_size": int(state.num_processes)}
    if backend == "deepspeed":
        facts.update(_deepspeed_facts(trainer.model_wrapped))
    elif backend == "fsdp":
        facts.update(_fsdp_facts(trainer.model_wrapped, getattr(state, "fsdp_plugin", None)))
    elif backend == "ddp":
        facts["sharded_params"] = False
    return facts


def optimizer_facts(trainer) -> dict:
    """``{"class", "bits"?, "paged"?, "state_dtypes"?}`` of the optimizer that really steps, under accelerate's and
    DeepSpeed's wrappers: e.g. bitsandbytes' ``AdamW`` with 8-bit state (transformers picks bnb's AdamW class with
    optim_bits=8 for adamw_8bit and paged_adamw_8bit), DeepSpeedCPUAdam under offload, torch's AdamW."""
    basic = getattr(trainer.model_wrapped, "basic_optimizer", None)  # a DeepSpeed engine's own optimizer
    optimizer = basic if basic is not None else getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    if optimizer is None:
        return {}
    facts: dict = {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"}
    if hasattr(optimizer, "args") and hasattr(optimizer.args, "optim_bits"):  # a bitsandbytes optimizer
        facts.update(bits=int(optimizer.args.optim_bits), paged=bool(getattr(optimizer, "is_paged", False)))
    dtypes = {str(value.dtype).removeprefix("torch.") for state in optimizer.state.values()
              for value in state.values() if hasattr(value, "dtype") and value.dim() > 0}
    if dtypes:  # filled after the first step: the 8-bit ones hold uint8 moments
        facts["state_dtypes"] = sorted(dtypes)
    return facts


def check_as_asked(config: RunConfig, facts: dict) -> None:
    """Fail the run when what runs is not what was asked: another backend, an unsharded FSDP/ZeRO-3 model,
    or a missing offload."""
    dist = config.distributed
    if dist.backend not in ("deepspeed", "fsdp"):
        return
    hint = "see the launch files (accelerate.yaml, deepspeed.json) in the run directory"
    if facts["backend"] != dist.backend:
        raise EngineError(f"backend {dist.backend} was asked for but {facts['backend']} is running "
                          f"({facts['world_size']} process(es))", hint)
    if dist.backend == "fsdp" and not facts.get("sharded_params"):
        raise EngineError("backend fsdp was asked for but the parameters are not sharded", hint)
    if dist.backend == "fsdp" and facts["world_size"] > 1 and facts.get("local_share", 0) >= 1:
        raise EngineError(f"backend fsdp runs {facts['world_size']} processes but each holds the whole model", hint)
    if dist.backend == "deepspeed":
        if facts.get("zero_stage") != dist.zero_stage:
            raise EngineError(f"ZeRO stage {dist.zero_stage} was asked for but DeepSpeed runs stage "
                              f"{facts.get('zero_stage')}", hint)
        if dist.zero_stage == 3 and facts["world_size"] > 1 and not facts.get("sharded_params"):
            raise EngineError("ZeRO-3 was asked for but the parameters are not partitioned", hint)
    wanted = (["optimizer"] if dist.offload_optimizer else []) + (["params"] if dist.offload_params else [])
    missing = [part for part in wanted if part not in facts.get("offload", [])]
    if missing:
        raise EngineError(f"CPU offload of {', '.join(missing)} was asked for but is not active", hint)


class LiveState(TrainerCallback):
    """At train begin (after the model is prepared): record ``distributed`` and ``optimizer`` in the run's facts,
    rewrite engine.json with them (rank 0), and fail fast when the run is not what it asked for. At train end,
    the optimizer again (its state now exists)."""

    def __init__(self, trainer, config: RunConfig, facts: dict, write_facts, run_dir: Path):
        self.trainer, self.config, self.facts = trainer, config, facts
        self.write_facts, self.run_dir = write_facts, run_dir

    def on_train_begin(self, args, state, control, **kwargs):
        live = distributed_facts(self.trainer)
        self.facts["distributed"] = live
        self.facts["optimizer"] = optimizer_facts(self.trainer)
        print(describe_result("distributed", live), flush=True)  # key=value text, not a dict
        if state.is_world_process_zero:
            self.write_facts(self.run_dir, self.facts)
        check_as_asked(self.config, live)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.facts["optimizer"] = optimizer_facts(self.trainer)
        if state.is_world_process_zero:
            self.write_facts(self.run_dir, self.facts)
        return control


def watch_live_state(trainer, config: RunConfig, facts: dict, write_facts, run_dir: Path) -> None:
    """The recipe's one hook: force FSDP where accelerate would not, and report/check the live state."""
    if force_fsdp_on_cpu(trainer):
        print("fsdp: accelerate's state forced from MULTI_CPU to FSDP (CPU processes, gloo)", flush=True)
    trainer.add_callback(LiveState(trainer, config, facts, write_facts, run_dir))
