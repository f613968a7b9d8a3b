"""The run-config schema: the one contract between the UI, the API, the CLI and the engine.

Pure pydantic, no torch. Every field has a description, bounds and a default, so
``{"base_model": "...", "datasets": ["..."]}`` alone is a valid run.

Method-specific settings are a discriminated union on ``method.name``. For convenience (and for
the HTTP API) a flat form is accepted too and folded into the nested one::

    {"method": "lora", "lora_rank": 16, "lora_alpha": 32}
    == {"method": {"name": "lora", "rank": 16, "alpha": 32}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backend.config.dataset_choice import (  # noqa: F401 - DatasetChoice re-exported
    MIXTURE_HELP,
    DatasetChoice,
    DatasetEntry,
)
from backend.config.distributed import DistributedConfig
from backend.config.early_stopping import best_checkpoint_problem
from backend.config.grpo import GrpoConfig, grpo_problem
from backend.config.methods import (  # noqa: F401 - re-exported: the schema is where callers look
    DpoLoss,
    FreezeMethod,
    FullMethod,
    LoraMethod,
    Method,
    PreferenceConfig,
    QLoraMethod,
)
from backend.config.methods import (
    StrictModel as _Strict,
)
from backend.config.trackers import Tracker

ComputeType = Literal["auto", "bf16", "fp16", "fp32", "pure_bf16"]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup", "warmup_stable_decay"]
Optimizer = Literal["adamw_torch", "adamw_8bit", "paged_adamw_8bit", "adafactor"]
Attention = Literal["auto", "flash_attention_2", "tunesmith_varlen", "sdpa", "eager"]
Stage = Literal["sft", "pt", "dpo", "kto", "rm", "grpo"]
PREFERENCE_STAGES = ("dpo", "kto")  # the stages the preference settings are for
PADDED_STAGES = ("dpo", "kto", "rm", "grpo")  # pairs or labelled replies in padded batches: packing is off
# default (LoRA/QLoRA, full/freeze) learning rates where sft's 2e-4 / 2e-5 are too high: LLaMA-Factory's DPO/KTO and
# reward-model examples, trl's GRPO default (full) and ten times that for LoRA; see RunConfig.learning_rate
STAGE_LEARNING_RATES = {"dpo": (5e-6, 1e-6), "kto": (5e-6, 1e-6), "rm": (1e-4, 1e-5), "grpo": (1e-5, 1e-6)}
Switch = Literal["auto", "on", "off"]
ChatTemplate = Literal["auto", "chatml", "qwen2", "llama3", "mistral", "gemma", "alpaca"]

_FLAT_PREFIXES = {"lora_": "", "qlora_": "", "freeze_": ""}
# LLaMA-Factory's flat preference arguments, accepted and folded into ``preference``
_FLAT_PREFERENCE = {"pref_beta": "beta", "pref_loss": "loss", "pref_ftx": "sft_weight", "simpo_gamma": "simpo_gamma",
                    "kto_chosen_weight": "desirable_weight", "kto_rejected_weight": "undesirable_weight"}


class RunConfig(_Strict):
    """Everything that defines a fine-tuning run."""

    base_model: str = Field(
        ..., min_length=1, description="Model id from GET /api/v1/models, or a path to a local HF-format model directory."
    )
    datasets: list[DatasetEntry] = Field(..., min_length=1, description=MIXTURE_HELP)
    method: Method = Field(default_factory=LoraMethod, description="Fine-tuning method and its settings.")
    stage: Stage = Field(
        "sft",
        description="sft = supervised chat fine-tuning (loss on the answers); pt = continued pretraining on raw text "
        "(every message is plain text, documents joined with EOS and packed into cutoff_len blocks, loss on all "
        "tokens); dpo = Direct Preference Optimization on preference datasets (chosen/rejected reply pairs; also its "
        "reference-free relatives ORPO and SimPO, see preference.loss); kto = "
        "Kahneman-Tversky Optimization on KTO datasets (replies labelled desirable or not) or preference datasets "
        "(each pair gives a desirable chosen and an undesirable rejected reply); rm = a reward model (a score head on the "
        "base) trained to rank the chosen reply of preference pairs above the rejected one; grpo = reinforcement "
        "learning from reward functions on prompts (any chat dataset: the last user turn is the prompt, its reply the "
        "reference). dpo/kto settings: preference; grpo settings: grpo.",
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig,
        description="β, loss (DPO variants, ORPO, SimPO) and weights of the preference stages dpo and kto.",
    )
    grpo: GrpoConfig = Field(
        default_factory=GrpoConfig, description="Samples per prompt, reply length, KL and reward functions of stage grpo."
    )

    learning_rate: float | None = Field(
        None, gt=0, le=1.0, description="Peak learning rate. Default: 2e-4 for LoRA/QLoRA, 2e-5 for full/freeze; "
        "stages dpo/kto: 5e-6 for LoRA/QLoRA (LLaMA-Factory's DPO/KTO examples), 1e-6 for full/freeze (trl's default); "
        "stage rm: 1e-4 for LoRA/QLoRA (LLaMA-Factory's reward-model example), 1e-5 for full/freeze; stage grpo: 1e-5 "
        "for LoRA/QLoRA, 1e-6 for full/freeze (trl's)."
    )
    num_epochs: float = Field(3.0, gt=0, le=1000, description="Passes over the data (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, le=10_000_000, description="Stop after this many optimizer steps.")
    per_device_batch_size: int = Field(2, ge=1, le=4096, description="Examples per forward pass on each device.")
    gradient_accumulation_steps: int = Field(4, ge=1, le=4096, description="Forward passes per optimizer step.")
    cutoff_len: int = Field(1024, ge=8, le=1_048_576, description="Maximum tokens per example; longer ones are truncated.")
    compute_type: ComputeType = Field(
        "auto",
        description="auto = bf16 where the hardware supports it, else fp32. bf16/fp16 keep fp32 master weights and "
        "compute under autocast; pure_bf16 holds every weight and the optimizer state in bf16 (no fp32 copy: about "
        "half the memory for full fine-tuning, less precise updates; not with DeepSpeed).",
    )
    lr_scheduler: Scheduler = Field("cosine", description="Learning-rate schedule after warm-up.")
    warmup_ratio: float = Field(0.0, ge=0.0, le=0.5, description="Share of steps spent warming up the learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, le=1e6, description="Gradient clipping norm.")
    optimizer: Optimizer = Field(
        "adamw_torch", description="adamw_8bit / paged_adamw_8bit need bitsandbytes (GPU or CPU); adafactor saves memory."
    )
    neftune_noise_alpha: float | None = Field(
        None, gt=0, le=100, description="NEFTune: add noise of this scale to the embeddings while training (e.g. 5)."
    )
    gradient_checkpointing: Switch = Field(
        "auto",
        description="Recompute activations in the backward pass to save memory. auto = on a CUDA GPU the memory "
        "plan decides from the model size and the free GPU memory; on CPU on for models over 1B parameters or "
        "cutoff_len of 4096 and more.",
    )
    use_liger_kernel: Switch = Field(
        "auto",
        description="Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU) for less memory and more speed. auto = on "
        "with a CUDA GPU and the liger-kernel package (pip install liger-kernel) for model types Liger supports.",
    )
    attn_implementation: Attention = Field(
        "auto",
        description="Attention kernels. auto = flash_attention_2 where flash-attn and a CUDA GPU are present; else, on "
        "a CUDA GPU with packing in bf16/fp16, tunesmith_varlen (PyTorch's own varlen FlashAttention kernel); else sdpa.",
    )
    packing: bool = Field(
        True,
        description="Padding-free batches: the batch's examples are concatenated into one row with per-example "
        "position ids, so no compute is spent on padding and no token attends across examples. Stages dpo/kto/rm "
        "always pad (trl 1.16 has no padding-free preference batches): packing is turned off for them.",
    )
    batch_tokens: int | None = Field(
        None, ge=16, le=10_000_000,
        description="With packing: fill each micro-batch with examples up to this many tokens instead of a fixed "
        "per_device_batch_size (an example longer than this goes alone). Default: on a CUDA GPU the memory plan's "
        "budget (about per_device_batch_size examples of average length, less if memory is short); on CPU "
        "per_device_batch_size examples.",
    )
    chat_template: ChatTemplate = Field(
        "auto",
        description="How conversations are laid out as text. auto = the tokenizer's own chat template (ChatML when "
        "it has none); chatml / qwen2 / llama3 / mistral / gemma / alpaca = that family's layout instead, for base "
        "models without a template or with the wrong one. The choice is saved with the trained tokenizer.",
    )
    train_on_prompt: bool = Field(False, description="Also compute the loss on prompt (system/user) tokens.")
    max_samples: int | None = Field(
        None, ge=1, description="Use at most the first N usable rows of each dataset (training and validation); "
        "a dataset's own max_samples overrides it."
    )
    mixture_size: int | None = Field(
        None, ge=1, le=100_000_000, description="Total training examples of a weighted mixture (needs weights). "
        "Default: the largest size that repeats no example; larger sizes repeat the datasets that run short."
    )
    val_size: float = Field(
        0.0, ge=0.0, lt=0.5, description="Share of each training dataset's rows held out (before mixing, so never "
        "trained on) for the evaluation loss. Use this or val_datasets, not both."
    )
    val_datasets: list[str] = Field(
        default_factory=list, description="Registered dataset ids (or names) whose rows give the evaluation loss "
        "instead of a held-out share (val_size must then be 0)."
    )
    eval_steps: int | None = Field(
        None, ge=1, le=10_000_000, description="Evaluate every N steps when there is validation data (val_size or "
        "val_datasets; default: 5 times per run)."
    )
    logging_steps: int = Field(1, ge=1, le=100_000, description="Log metrics every N optimizer steps.")
    save_steps: int | None = Field(
        100, ge=1, description="Save a resumable checkpoint every N steps (None = only the final output)."
    )
    save_total_limit: int | None = Field(2, ge=1, le=1000, description="Keep only the newest K checkpoints (default 2; None = all).")
    early_stopping_patience: int | None = Field(
        None, ge=1, le=1000, description="Early stopping: end training when the evaluation loss has not improved "
        "for this many evaluations in a row (needs validation data: val_size or val_datasets). None = off."
    )
    early_stopping_threshold: float = Field(
        0.0, ge=0.0, le=1000.0, description="Early stopping: an evaluation counts as an improvement only when the "
        "evaluation loss falls below the best so far by more than this (absolute)."
    )
    load_best_model_at_end: bool = Field(
        False, description="Make the checkpoint with the lowest evaluation loss the run's output instead of the last "
        "step's (needs validation data). Checkpoints are then saved at every evaluation, whatever save_steps says."
    )
    report_to: Tracker = Field(
        "none", description="Experiment tracker that also gets the metrics and the run's config: tensorboard = event "
        "files in the run dir's tensorboard/ folder; mlflow = mlflow_tracking_uri, by default a file store in the "
        "studio home (mlruns/); wandb = Weights & Biases, offline into the run dir unless WANDB_API_KEY is set. The "
        "studio's own charts work either way."
    )
    mlflow_tracking_uri: str | None = Field(
        None, min_length=1, max_length=2048, description="report_to mlflow: the MLflow tracking URI (a server "
        "http://host:5000, or file:/path). Default: the studio home's mlruns/ file store."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed for data order and initialisation.")
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Processes, GPUs, machines and the DDP / DeepSpeed ZeRO / FSDP backend."
    )
    init_from_run: str | None = Field(
        None, min_length=5, max_length=64, pattern=r"^job_[A-Za-z0-9_-]+$",
        description="Continue from a finished run: the id of a succeeded run (same base model) whose trained "
        "adapter (lora/qlora, with the same rank, alpha, targets and variants) or trained model (full/freeze) "
        "this run starts from instead of a fresh adapter or the base weights; more epochs on the same data or "
        "new data on top. The parent's id is this run's lineage (parent_run on GET /api/v1/jobs/{id}).",
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_flat_method_fields(cls, data: Any) -> Any:
        """Accept ``method: "lora"`` plus ``lora_rank``-style keys and fold them into ``method``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        method = data.get("method", "lora")
        preference = {key: data.pop(flat) for flat, key in _FLAT_PREFERENCE.items() if flat in data}
        if preference.get("loss") == "orpo" and "beta" in preference:  # LLaMA-Factory's ORPO reads pref_beta as λ
            preference["orpo_lambda"] = preference.pop("beta")
        if preference:
            nested = data.get("preference") or {}
            data["preference"] = {**preference, **nested} if isinstance(nested, dict) else nested
        flat = {k: data.pop(k) for k in list(data) if any(k.startswith(p) for p in _FLAT_PREFIXES)}
        if isinstance(method, str):
            method = {"name": method}
        if isinstance(method, dict) and flat:
            method = dict(method)
            for key, value in flat.items():
                for prefix in _FLAT_PREFIXES:
                    if key.startswith(prefix):
                        method.setdefault(key[len(prefix):], value)
                        break
        elif flat:
            data.update(flat)  # let extra="forbid" name the stray fields
        data["method"] = method
        return data

    @field_validator("gradient_checkpointing", "use_liger_kernel", mode="before")
    @classmethod
    def _checkpointing_from_bool(cls, value: Any) -> Any:
        """Older configs say true/false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("datasets")
    @classmethod
    def _check_weights(cls, datasets: list) -> list:
        weights = [d.weight for d in datasets if isinstance(d, DatasetChoice) and d.weight is not None]
        if weights and len(weights) < len(datasets):
            missing = [d if isinstance(d, str) else d.id for d in datasets
                       if isinstance(d, str) or d.weight is None]
            raise ValueError(f"{', '.join(map(repr, missing))} {'has' if len(missing) == 1 else 'have'} no weight "
                             "while others do; give every dataset a weight (e.g. 1 each for equal shares) or none "
                             "(to use every row once)")
        if weights and not any(weights):
            raise ValueError("every weight is 0, so nothing would be trained on; give at least one dataset a "
                             "weight above 0")
        return datasets

    @field_validator("mixture_size")
    @classmethod
    def _mixture_size_needs_weights(cls, size: int | None, info: ValidationInfo) -> int | None:
        datasets = info.data.get("datasets") or []
        if size is not None and not any(isinstance(d, DatasetChoice) and d.weight is not None for d in datasets):
            raise ValueError("mixture_size sets the size of a weighted mixture and no dataset has a weight; add a "
                             "weight to every dataset or leave mixture_size empty")
        return size

    @field_validator("val_datasets")
    @classmethod
    def _one_kind_of_validation(cls, val_datasets: list[str], info: ValidationInfo) -> list[str]:
        val_size = info.data.get("val_size") or 0
        if val_datasets and val_size > 0:
            raise ValueError(f"val_size={val_size} and val_datasets are both set; evaluate on either a held-out "
                             "share (val_size) or separate datasets (val_datasets): set val_size to 0 or clear "
                             "val_datasets")
        return val_datasets

    @property
    def dataset_choices(self) -> list[DatasetChoice]:
        """``datasets`` with every plain id turned into a ``DatasetChoice`` (no weight, no own cap)."""
        return [DatasetChoice(id=d) if isinstance(d, str) else d for d in self.datasets]

    @model_validator(mode="after")
    def _check_combination(self) -> RunConfig:
        if self.warmup_ratio > 0 and self.lr_scheduler == "constant":
            raise ValueError("lr_scheduler 'constant' has no warm-up; use 'constant_with_warmup' or set warmup_ratio to 0")
        method = self.method
        if isinstance(method, LoraMethod) and method.init == "pissa":
            if method.name == "qlora":
                raise ValueError("method.init 'pissa' is not supported with QLoRA here; use 'default' or method lora")
            if method.use_dora:
                raise ValueError("method.init 'pissa' cannot be combined with use_dora; pick one")
            dist = self.distributed
            if dist.backend == "fsdp" or (dist.backend == "deepspeed" and dist.zero_stage == 3):
                raise ValueError("method.init 'pissa' needs the whole adapter in each process to save it as a plain "
                                 "LoRA; use backend 'ddp' or ZeRO stage 1-2, or init 'default'")
        if self.compute_type == "pure_bf16" and self.distributed.backend == "deepspeed":
            raise ValueError("compute_type 'pure_bf16' cannot run under DeepSpeed (it keeps its own fp32 master "
                             "weights); use compute_type 'bf16', or backend 'ddp'/'fsdp'")
        self._check_preference_stage()
        problem = grpo_problem(self.stage, self.grpo, self.per_device_batch_size, self.gradient_accumulation_steps,
                               self.cutoff_len)
        if problem:
            raise ValueError(problem)
        problem = best_checkpoint_problem(stage=self.stage, has_validation=self.val_size > 0 or bool(self.val_datasets),
                                          early_stopping_patience=self.early_stopping_patience,
                                          early_stopping_threshold=self.early_stopping_threshold,
                                          load_best_model_at_end=self.load_best_model_at_end)
        if problem:
            raise ValueError(problem)
        if self.mlflow_tracking_uri is not None and self.report_to != "mlflow":
            raise ValueError(f"mlflow_tracking_uri applies to report_to 'mlflow' and report_to is {self.report_to!r}; "
                             "set report_to to 'mlflow' or clear mlflow_tracking_uri")
        if self.batch_tokens is not None and not self.packing:
            raise ValueError("batch_tokens fills packed micro-batches up to a token budget and needs packing; turn "
                             "packing on or clear batch_tokens")
        if self.attn_implementation == "tunesmith_varlen" and self.compute_type == "fp32":
            raise ValueError("attn_implementation 'tunesmith_varlen' (a FlashAttention kernel) runs in bf16/fp16 "
                             "only; set compute_type to auto, bf16 or fp16, or attn_implementation to sdpa")
        return self

    def _check_preference_stage(self) -> None:
        """dpo/kto/rm: pad instead of packing, refuse settings that would silently do nothing or go wrong."""
        if self.stage not in PADDED_STAGES:
            return
        pref, stage = self.preference, self.stage
        if self.batch_tokens is not None:
            raise ValueError(f"batch_tokens fills packed micro-batches and stage {stage!r} pads its batches (trl has "
                             "no padding-free preference training); clear batch_tokens and set per_device_batch_size")
        self.packing = False  # documented on the field: preference batches are padded
        if stage in ("rm", "grpo"):
            if pref != PreferenceConfig():
                raise ValueError(f"preference settings apply to stages 'dpo' and 'kto'; stage {stage!r} has its own "
                                 "loss: clear preference")
            return
        if isinstance(self.method, LoraMethod) and self.method.init == "pissa" and not pref.reference_free:
            raise ValueError(f"method.init 'pissa' changes the base weights, and stage {stage!r} uses the base with the "
                             "adapter switched off as its reference model; use init 'default' or 'gaussian'")
        if stage == "kto":
            if self.per_device_batch_size < 2:
                raise ValueError("stage 'kto' estimates its KL term from the other examples of a micro-batch, so "
                                 "per_device_batch_size must be at least 2")
            for name, default in (("loss", "sigmoid"), ("sft_weight", 0.0), ("orpo_lambda", 0.1), ("simpo_gamma", 1.0)):
                if getattr(pref, name) != default:
                    raise ValueError(f"preference.{name} applies to stage 'dpo' only (kto always uses the KTO loss); "
                                     f"reset it to {default!r} or use stage 'dpo'")
        else:
            for name in ("desirable_weight", "undesirable_weight"):
                if getattr(pref, name) != 1.0:
                    raise ValueError(f"preference.{name} applies to stage 'kto' only; reset it to 1 or use stage 'kto'")
            problem = pref.dpo_loss_problem()
            if problem:
                raise ValueError(problem)

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        lora, full = STAGE_LEARNING_RATES.get(self.stage, (2e-4, 2e-5))
        return lora if self.method.name in ("lora", "qlora") else full


class DatasetRef(_Strict):
    """A dataset as the engine sees it: normalized JSONL, one row per line (``{"messages": [...]}`` plus
    ``rejected`` for preference rows or ``label`` for KTO rows; ``{"text": ...}`` for raw text)."""

    id: str
    name: str
    path: str = Field(..., description="Absolute path of the normalized messages JSONL file.")
    num_rows: int = 0
    format: str = Field("messages", description="Registered format: alpaca|messages|sharegpt|preference|kto|text.")
    weight: float | None = Field(None, ge=0.0, description="Mixture weight (None = no weighted mixture).")
    max_samples: int | None = Field(None, ge=1, description="Use at most the first N usable rows.")


class ResolvedRun(_Strict):
    """What the job service writes to ``runs/<id>/run.yaml``: the config plus every resolved path."""

    run_id: str
    config: RunConfig
    model_path: str = Field(..., description="Absolute path of the HF-format base model directory.")
    datasets: list[DatasetRef]
    val_datasets: list[DatasetRef] = Field(default_factory=list, description="Datasets giving the evaluation loss.")
    init_from: str | None = Field(
        None, description="Absolute path of the parent run's adapter (lora/qlora) or trained model (full/freeze) "
        "this run starts from (config.init_from_run); None = a fresh adapter on the base, or the base weights.")
    tracker_uri: str | None = Field(None, description="report_to mlflow: the tracking URI the engine uses (the "
                                    "config's mlflow_tracking_uri, else the studio home's file store).")
    created_at: str = ""
