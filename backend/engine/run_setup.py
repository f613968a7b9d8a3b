"""What a run resolves on this machine before its stage trains: precision and attention (and whether the
asked-for kernels and optimizers can run here at all), the CUDA memory plan and token-budget micro-batches, and
the base model loaded with checkpointing and Liger decided. Each step records what it resolved into ``facts``
(engine.json and result.json) and says it in the log."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from backend.config.schema import PREFERENCE_STAGES, ResolvedRun, RunConfig


@dataclass
class LoadedModel:
    model: Any
    attention: str  # what the model really uses (a kernel may resolve further on load)
    checkpointing: bool
    liger: bool


def resolve_compute(config: RunConfig, facts: dict):
    """``(precision, attention)``; an optimizer, method or kernel this machine cannot run is an EngineError now,
    before minutes of data and model loading."""
    from backend.engine import methods
    from backend.engine import model as model_io

    precision = model_io.resolve_precision(config.compute_type)
    attention = model_io.resolve_attention(config.attn_implementation, config.packing, precision.half)
    facts["precision"] = precision.name
    if config.method.name == "qlora":
        methods.check_qlora_available()
    if config.optimizer.endswith("_8bit"):
        check_8bit_optimizer_available(config.optimizer)
    if config.stage == "rm":
        print("stage rm: padded batches (packing is off), a reward model: score head, loss -log sigmoid(r(chosen) - "
              "r(rejected))", flush=True)
    if config.stage in PREFERENCE_STAGES:
        pref = config.preference
        print(f"stage {config.stage}: padded batches (packing is off), loss "
              f"{pref.loss if config.stage == 'dpo' else 'kto'}, "
              + (f"no reference model, {describe_reference_free(pref)}" if pref.reference_free
                 else f"beta {pref.effective_beta}"), flush=True)
    return precision, attention


def describe_reference_free(pref) -> str:
    if pref.loss == "orpo":
        return f"lambda {pref.orpo_lambda}"
    return f"beta {pref.effective_beta}, gamma {pref.simpo_gamma}, sft_weight {pref.sft_weight}"


def check_8bit_optimizer_available(optimizer: str) -> None:
    """bitsandbytes' 8-bit optimizers run on a CUDA GPU or the CPU; they need the package."""
    from backend.engine.quantization import check_bitsandbytes_installed

    check_bitsandbytes_installed(f"optimizer {optimizer}")


def plan_memory(run: ResolvedRun, precision, stage, train_dataset, facts: dict):
    """On a CUDA GPU, the memory plan (checkpointing, micro-batch tokens) from config.json, the method and this
    GPU's free memory right now (before the model is loaded); None on CPU, or, with a log line, when the model's
    config.json lacks the sizes it needs."""
    import torch

    from backend.engine import memory_plan

    if not torch.cuda.is_available():
        return None
    config = run.config
    try:
        shape = memory_plan.ModelShape.from_model_dir(run.model_path)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        print(f"memory plan: skipped, config.json does not give the model's sizes ({exc!r})", flush=True)
        return None
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch
    free, _ = torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", "0")))
    lengths, per_example = stage.sequence_lengths(train_dataset)  # preference: chosen+rejected, or KL sequences
    longest = max(lengths)
    if config.packing:
        wanted = config.batch_tokens or round(config.per_device_batch_size * sum(lengths) / len(lengths))
    else:
        wanted = config.per_device_batch_size * per_example * longest
    checkpointing = None if config.gradient_checkpointing == "auto" else config.gradient_checkpointing == "on"
    plan = memory_plan.plan_memory(shape, memory_plan.setup_for_run(config, precision.name, processes),
                                   cutoff_len=longest, wanted_tokens=wanted, free_bytes=free,
                                   checkpointing=checkpointing)
    print(plan.describe(), flush=True)
    facts["memory_plan"] = plan.as_dict()
    return plan


def group_batches(config: RunConfig, plan, train_dataset, facts: dict):
    """``(train_dataset, batch_tokens)``: with a token budget (batch_tokens, or the plan's with packing) packed
    micro-batches are filled up to it instead of holding a fixed example count."""
    from backend.engine import batching

    batch_tokens = config.batch_tokens or (plan.batch_tokens if plan is not None and config.packing else None)
    if batch_tokens:
        train_dataset = batching.pack_dataset(train_dataset, batch_tokens, config.seed)
        print(batching.describe_groups(train_dataset), flush=True)
    facts["batch_tokens"] = batch_tokens
    return train_dataset, batch_tokens


def load_base_model(run: ResolvedRun, precision, attention: str, plan, facts: dict, load_model) -> LoadedModel:
    """The base model (+ 4/8-bit quantization for QLoRA), loaded by the stage's ``load_model`` (its head), with
    gradient checkpointing and Liger decided."""
    import torch

    from backend.engine import init_from, methods, quantization
    from backend.engine import model as model_io

    config = run.config
    load_kwargs = {}
    if config.method.name == "qlora":
        load_kwargs["quantization_config"] = methods.build_quantization_config(config.method, precision.dtype)
        load_kwargs["device_map"] = quantization.quantized_device_map()  # this process's GPU, or the CPU
    # full/freeze keep fp32 master weights (autocast does the bf16/fp16 math) unless pure_bf16; LoRA bases load in
    # the compute dtype
    weights_dtype = precision.dtype if config.method.name in ("lora", "qlora") or precision.pure else torch.float32
    weights_from = init_from.weights_dir(run)  # a continued full/freeze run: its parent's trained model
    model = load_model(weights_from, weights_dtype, attn_implementation=attention, **load_kwargs)
    if weights_from != run.model_path:
        facts["init_from"] = {"path": weights_from, "run": config.init_from_run}
    attention = getattr(model.config, "_attn_implementation", None) or attention
    if config.method.name == "qlora":
        facts["quantization"] = quantization.quantization_facts(model)  # from the loaded layers: really 4/8-bit
    facts["attn_implementation"] = attention
    print(f"model: {weights_from} ({precision.name}, weights {weights_dtype})", flush=True)
    print(f"attention: {model_io.describe_attention(attention, config.packing)}", flush=True)
    if plan is not None and config.gradient_checkpointing == "auto":
        checkpointing, why = plan.gradient_checkpointing, "memory plan"
    else:
        checkpointing, why = model_io.resolve_gradient_checkpointing(
            config.gradient_checkpointing, sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters()),
            config.cutoff_len)  # ds_numel: the full size of a ZeRO-3 partitioned parameter
    facts["gradient_checkpointing"] = checkpointing
    print(f"gradient checkpointing: {'on' if checkpointing else 'off'} ({why})", flush=True)
    liger, why = model_io.resolve_liger(config.use_liger_kernel, getattr(model.config, "model_type", ""))
    facts["liger_kernel"] = liger
    print(f"liger kernels: {'on (RMSNorm, RoPE, SwiGLU)' if liger else 'off'} ({why})", flush=True)
    return LoadedModel(model=model, attention=attention, checkpointing=checkpointing, liger=liger)
