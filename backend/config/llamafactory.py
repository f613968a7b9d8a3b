"""LLaMA-Factory training YAMLs (``llamafactory-cli train FILE``) as Tunesmith run configs.

Pure and torch-free: :func:`parse_llamafactory_yaml` reads the text, :func:`map_llamafactory_args` turns LF's flat
argument names into our run-config fields and says, key by key, what it could not honour. Resolving the model
and the datasets against this studio, and validation, happen after (``backend.config.normalize``).

Where the YAML leaves a key out, LF's own default applies where it differs from ours and changes what is trained
(``LF_DEFAULTS``): the imported run trains like the LF run would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from backend.config.llamafactory_keys import (
    DEEPSPEED_FILE,
    FLASH_ATTN,
    IGNORED,
    LF_DEFAULTS,
    LF_KIND,
    LF_ONLY_KEYS,
    MAPPED,
    OPTIMIZERS,
    TEMPLATES,
    TUNESMITH_ONLY_KEYS,
)
from backend.config.methods import DpoLoss, PreferenceConfig
from backend.config.normalize import ConfigWarning
from backend.config.schema import ChatTemplate, Scheduler, Stage
from backend.config.yaml_input import parse_config_yaml
from backend.errors import Invalid


@dataclass
class LlamaFactoryMapping:
    """Our run-config fields taken from an LF YAML, and one warning per LF key not honoured."""

    config: dict[str, Any] = field(default_factory=dict)
    warnings: list[ConfigWarning] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def warn(self, key: str, msg: str) -> None:
        self.warnings.append(ConfigWarning(key, msg))


def parse_llamafactory_yaml(text: str) -> dict[str, Any]:
    return parse_config_yaml(text, LF_KIND)


def is_llamafactory_config(data: Mapping[str, Any]) -> bool:
    """True when ``data`` uses LLaMA-Factory's argument names rather than a Tunesmith run config's (the two share
    flat names such as ``lora_rank`` and ``learning_rate``, so only the names each alone uses decide)."""
    return bool(data.keys() & LF_ONLY_KEYS) and not data.keys() & TUNESMITH_ONLY_KEYS


def map_llamafactory_args(args: Mapping[str, Any]) -> LlamaFactoryMapping:
    """LF arguments -> our run-config fields (unresolved model/dataset names; flat method keys folded later)."""
    out = LlamaFactoryMapping()
    args = {k: v for k, v in args.items() if v is not None}  # `key: null` = LF's default, as in LF's own parser
    lf = {**LF_DEFAULTS, **args}
    for step in (_map_stage, _map_method, _map_data, _map_training, _map_precision, _map_preference, _map_kernels,
                 _map_distributed):
        step(lf, out)
    for key in args:
        if key in out.used:
            continue
        reason = IGNORED.get(key)
        if reason:
            out.warn(key, f"{key} is not used: {reason}")
        elif key in MAPPED:
            out.warn(key, f"{key} does not apply to this run (stage {out.config['stage']!r}, method "
                     f"{out.config['method']!r}); ignored")
        else:
            out.warn(key, f"{key} is not a LLaMA-Factory training argument the studio knows; ignored")
    defaults = [f"{k}={LF_DEFAULTS[k]}" for k in LF_DEFAULTS if k not in args]
    if "lora_alpha" not in args and out.config.get("method") in ("lora", "qlora"):
        defaults.append(f"lora_alpha={out.config.get('lora_alpha')} (2 x lora_rank)")
    if defaults:
        out.warn("(defaults)", "not in the YAML, so LLaMA-Factory's defaults apply: " + ", ".join(defaults))
    if not args.keys() & out.used:
        raise Invalid("nothing in this YAML is a LLaMA-Factory training argument (model_name_or_path, stage, "
                      "dataset, learning_rate, ...); is it a Tunesmith run config? Load that with "
                      "POST /api/v1/configs/normalize", loc=("body", "yaml"))
    return out


# -- one function per group of LF arguments; each marks the keys it consumed in ``out.used`` ---------------------


def _take(lf: Mapping[str, Any], out: LlamaFactoryMapping, key: str, target: str | None = None,
          convert: Callable[[Any], Any] | None = None) -> None:
    """Copy ``lf[key]`` to ``out.config[target]`` (converted); absent keys are skipped."""
    if key not in lf:
        return
    out.used.add(key)
    value = lf[key]
    out.config[target or key] = convert(value) if convert else value


def _number(value: Any) -> Any:
    """PyYAML reads ``1e-4`` (no dot) as a string; LF users write it that way often."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _names(value: Any) -> list[str]:
    """LF's comma-separated lists (``q_proj,v_proj``)."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _map_stage(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    stage = str(lf.get("stage", "sft"))
    out.used.update({"stage", "do_train"} & lf.keys())
    if stage not in get_args(Stage):
        offered = ", ".join(get_args(Stage))
        raise Invalid(f"stage {stage!r} is not offered by this studio (stages: {offered}); nothing was imported",
                      loc=("body", "yaml", "stage"), hint=f"change stage to one of {offered}")
    out.config["stage"] = stage
    if lf.get("do_train") is False:
        out.warn("do_train", "do_train is false (LLaMA-Factory would not train); its training settings are "
                 "imported for a training run")


def _map_method(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    kind = str(lf.get("finetuning_type", "lora"))
    out.used.update({"finetuning_type", "quantization_bit"} & lf.keys())
    bits = lf.get("quantization_bit")
    if kind not in ("lora", "full", "freeze"):
        raise Invalid(f"finetuning_type {kind!r} is not offered by this studio (lora, full, freeze; QLoRA is lora "
                      "with quantization_bit)", loc=("body", "yaml", "finetuning_type"))
    if bits is not None and kind != "lora":
        raise Invalid(f"quantization_bit needs finetuning_type lora (QLoRA); it is {kind!r}",
                      loc=("body", "yaml", "quantization_bit"))
    if bits is not None and bits not in (4, 8):
        raise Invalid(f"quantization_bit {bits!r}: QLoRA here quantizes to 4 or 8 bits (bitsandbytes)",
                      loc=("body", "yaml", "quantization_bit"))
    if kind == "freeze":
        _map_freeze(lf, out)
        return
    out.config["method"] = "qlora" if bits else kind
    if kind == "full":
        return
    if bits:
        out.config["qlora_bits"] = bits
        _take(lf, out, "quantization_type", "qlora_quant_type")
        _take(lf, out, "double_quantization", "qlora_double_quant")
    _take(lf, out, "lora_rank", convert=_number)
    rank = out.config.get("lora_rank", 8)
    _take(lf, out, "lora_alpha", convert=_number)
    out.config.setdefault("lora_alpha", rank * 2 if isinstance(rank, int | float) else 16)
    _take(lf, out, "lora_dropout", convert=_number)
    _take(lf, out, "lora_target", "lora_targets",
          convert=lambda v: ["all-linear" if t == "all" else t for t in _names(v)])
    _take(lf, out, "additional_target", "lora_extra_trainable_modules", convert=_names)
    _take(lf, out, "use_rslora", "lora_use_rslora")
    _take(lf, out, "use_dora", "lora_use_dora")
    _take(lf, out, "loraplus_lr_ratio", "lora_loraplus_lr_ratio", convert=_number)
    if lf.get("pissa_init"):
        out.config["lora_init"] = "pissa"
    out.used.update({"pissa_init"} & lf.keys())


def _map_freeze(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    out.config["method"] = "freeze"
    layers = lf.get("freeze_trainable_layers", 2)
    out.used.update({"freeze_trainable_layers"} & lf.keys())
    if isinstance(layers, int) and layers < 0:
        out.warn("freeze_trainable_layers", f"freeze_trainable_layers {layers} trains the first {-layers} layers; "
                 "the studio trains the last N layers only, so it keeps its default (the last 2)")
    else:
        out.config["freeze_trainable_layers"] = layers
    modules = lf.get("freeze_trainable_modules", "all")
    out.used.update({"freeze_trainable_modules"} & lf.keys())
    if _names(modules) != ["all"]:
        out.config["freeze_trainable_modules"] = _names(modules)
    _take(lf, out, "freeze_extra_modules", "freeze_extra_modules", convert=_names)


def _map_data(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    _take(lf, out, "model_name_or_path", "base_model")
    _take(lf, out, "dataset", "datasets", convert=_names)
    _take(lf, out, "eval_dataset", "val_datasets", convert=_names)
    _take(lf, out, "cutoff_len", convert=_number)
    _take(lf, out, "max_samples", convert=_number)
    _take(lf, out, "train_on_prompt")
    _take(lf, out, "packing")
    if lf.get("packing") and not lf.get("neat_packing"):
        out.warn("packing", "packing here keeps examples apart (each attends only to itself, like LLaMA-Factory's "
                 "neat_packing), so results match unpacked training rather than LF's cross-example packing")
    _map_validation(lf, out)
    _map_mixture(lf, out)
    template = lf.get("template")
    if template is not None:
        out.used.add("template")
        ours = TEMPLATES.get(str(template))
        if ours and ours in get_args(ChatTemplate):
            out.config["chat_template"] = ours
        else:
            out.warn("template", f"template {template!r} has no named counterpart here "
                     f"({', '.join(TEMPLATES)}); the model tokenizer's own chat template is used")


def _map_validation(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    val_size = _number(lf.get("val_size"))
    out.used.update({"val_size", "eval_steps"} & lf.keys())
    if val_size is not None and "eval_dataset" in lf:
        out.warn("val_size", "val_size and eval_dataset are both set; the studio evaluates on eval_dataset only")
    elif isinstance(val_size, float | int) and 1 <= val_size:
        out.warn("val_size", f"val_size {val_size} is a number of rows; the studio holds out a share (0 to 0.5) of "
                 "each dataset: set val_size on the Train page")
    elif val_size:
        out.config["val_size"] = val_size
    if "eval_steps" in lf:
        out.config["eval_steps"] = _number(lf["eval_steps"])


def _map_mixture(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    """LF's interleave_probs (with mix_strategy interleave_*) are our mixture weights."""
    strategy = str(lf.get("mix_strategy", "concat"))
    out.used.update({"mix_strategy", "interleave_probs"} & lf.keys())
    probs = lf.get("interleave_probs")
    if strategy == "concat" or not probs:
        if probs:
            out.warn("interleave_probs", "interleave_probs needs mix_strategy interleave_under/over; with concat "
                     "every dataset is used once")
        return
    names = out.config.get("datasets") or []
    weights = [_number(p) for p in _names(probs)]
    if len(weights) != len(names):
        out.warn("interleave_probs", f"{len(weights)} interleave_probs for {len(names)} datasets; the datasets are "
                 "concatenated instead")
        return
    out.config["datasets"] = [{"id": name, "weight": w} for name, w in zip(names, weights)]
    if strategy == "interleave_over":
        out.warn("mix_strategy", "interleave_over repeats datasets until all are exhausted; the studio draws the "
                 "largest mixture that repeats none (set mixture_size for a larger one)")


def _map_training(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    _take(lf, out, "learning_rate", convert=_number)
    _take(lf, out, "num_train_epochs", "num_epochs", convert=_number)
    _take(lf, out, "per_device_train_batch_size", "per_device_batch_size", convert=_number)
    _take(lf, out, "gradient_accumulation_steps", convert=_number)
    for key in ("weight_decay", "max_grad_norm", "neftune_noise_alpha", "seed", "logging_steps", "save_steps",
                "save_total_limit"):
        _take(lf, out, key, convert=_number)
    max_steps = _number(lf.get("max_steps"))
    out.used.update({"max_steps"} & lf.keys())
    if isinstance(max_steps, int) and max_steps > 0:
        out.config["max_steps"] = max_steps
    scheduler = str(lf.get("lr_scheduler_type"))
    out.used.update({"lr_scheduler_type"} & lf.keys())
    if scheduler in get_args(Scheduler):
        out.config["lr_scheduler"] = scheduler
    else:
        out.warn("lr_scheduler_type", f"lr_scheduler_type {scheduler!r} is not offered here "
                 f"({', '.join(get_args(Scheduler))}); the studio's default (cosine) applies")
    _map_warmup(lf, out, max_steps if isinstance(max_steps, int) and max_steps > 0 else None)
    optim = lf.get("optim")
    if optim is not None:
        out.used.add("optim")
        if str(optim) in OPTIMIZERS:
            out.config["optimizer"] = OPTIMIZERS[str(optim)]
        else:
            out.warn("optim", f"optim {optim!r} is not offered here ({', '.join(sorted(set(OPTIMIZERS.values())))});"
                     " adamw_torch is used")


def _map_warmup(lf: Mapping[str, Any], out: LlamaFactoryMapping, max_steps: int | None) -> None:
    _take(lf, out, "warmup_ratio", convert=_number)
    steps = _number(lf.get("warmup_steps"))
    out.used.update({"warmup_steps"} & lf.keys())
    if not steps:
        return
    if max_steps:
        out.config["warmup_ratio"] = round(steps / max_steps, 6)
    else:
        out.warn("warmup_steps", f"warmup_steps {steps} needs the run's total steps to become a warm-up share "
                 "(the studio's warmup_ratio); set max_steps, or warmup_ratio instead")


def _map_precision(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    flags = [key for key in ("pure_bf16", "bf16", "fp16") if lf.get(key)]
    out.used.update({"pure_bf16", "bf16", "fp16"} & lf.keys())
    if flags:
        out.config["compute_type"] = flags[0]
    if len(flags) > 1:
        out.warn(flags[1], f"{' and '.join(flags)} are all set; {flags[0]} is used")


def _map_preference(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    """pref_* (dpo) and kto_* (kto) into ``preference``; a setting the run's stage does not use is a warning."""
    stage = out.config["stage"]
    fields = PreferenceConfig.model_fields
    names = {"pref_beta": ("beta", ("dpo", "kto")), "pref_loss": ("loss", ("dpo",)),
             "pref_ftx": ("sft_weight", ("dpo",)), "kto_chosen_weight": ("desirable_weight", ("kto",)),
             "kto_rejected_weight": ("undesirable_weight", ("kto",)), "simpo_gamma": ("simpo_gamma", ("dpo",))}
    preference: dict[str, Any] = {}
    for key, (ours, stages) in names.items():
        if key not in lf:
            continue
        out.used.add(key)
        value = _number(lf[key])
        if ours not in fields:
            out.warn(key, f"{key} is not offered by this studio; ignored")
        elif stage not in stages:
            out.warn(key, f"{key} applies to stage {' or '.join(stages)} and this run's stage is {stage!r}; ignored")
        elif key == "pref_loss" and value not in get_args(DpoLoss):
            raise Invalid(f"pref_loss {value!r} is not offered by this studio (losses: "
                          f"{', '.join(get_args(DpoLoss))}); nothing was imported", loc=("body", "yaml", key))
        else:
            preference[ours] = value
    if preference.get("loss") == "orpo" and "beta" in preference:  # LF's ORPO reads pref_beta as its λ
        preference["orpo_lambda"] = preference.pop("beta")
    if preference:
        out.config["preference"] = preference


def _map_kernels(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    flash = lf.get("flash_attn")
    if flash is not None:
        out.used.add("flash_attn")
        if str(flash) in FLASH_ATTN:
            out.config["attn_implementation"] = FLASH_ATTN[str(flash)]
        else:
            out.warn("flash_attn", f"flash_attn {flash!r} is not one of {', '.join(FLASH_ATTN)}; auto is used")
    if "enable_liger_kernel" in lf:
        out.used.add("enable_liger_kernel")
        out.config["use_liger_kernel"] = "on" if lf["enable_liger_kernel"] else "off"
    if "disable_gradient_checkpointing" in lf:
        out.used.add("disable_gradient_checkpointing")
        if lf["disable_gradient_checkpointing"]:
            out.config["gradient_checkpointing"] = "off"


def _map_distributed(lf: Mapping[str, Any], out: LlamaFactoryMapping) -> None:
    path = lf.get("deepspeed")
    if path is None:
        return
    out.used.add("deepspeed")
    match = DEEPSPEED_FILE.search(str(path))
    if match is None:
        out.warn("deepspeed", f"deepspeed {path!r} is not one of LLaMA-Factory's ds_z{{0,2,3}}[_offload]_config.json "
                 "files, so its settings are unknown here; set the ZeRO stage under Distributed")
        return
    stage, offload = int(match["stage"]), bool(match["offload"])
    out.config["distributed"] = {"backend": "deepspeed", "zero_stage": stage,
                                 "offload_optimizer": offload and stage >= 1,
                                 "offload_params": offload and stage == 3}
