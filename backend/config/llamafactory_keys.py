"""LLaMA-Factory's training-argument names as Tunesmith reads them: which LF names mean what here, LF's defaults
where they differ from ours, and why the keys that change nothing here are left out. Data only; the mapping is
``backend.config.llamafactory``."""

from __future__ import annotations

import re
from typing import Any

LF_KIND = "LLaMA-Factory training YAML"
LF_ONLY_KEYS = {"model_name_or_path", "finetuning_type", "dataset", "template", "per_device_train_batch_size",
                "num_train_epochs", "lr_scheduler_type", "quantization_bit", "lora_target", "output_dir", "do_train"}
TUNESMITH_ONLY_KEYS = {"base_model", "datasets", "method", "num_epochs", "per_device_batch_size", "lr_scheduler",
                       "compute_type", "preference", "distributed"}

# LF's defaults (its FinetuningArguments/DataArguments and HF TrainingArguments) where ours differ
LF_DEFAULTS: dict[str, Any] = {
    "lora_dropout": 0.0, "cutoff_len": 2048, "learning_rate": 5e-5, "lr_scheduler_type": "linear",
    "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
}
# LF template name -> our named chat template (same layout); other LF templates keep the tokenizer's own
TEMPLATES = {"chatml": "chatml", "qwen": "qwen2", "llama3": "llama3", "mistral": "mistral", "gemma": "gemma",
             "alpaca": "alpaca"}
DEEPSPEED_FILE = re.compile(r"(?:^|[/\\])ds_z(?P<stage>[0-3])(?P<offload>_offload)?_config\.json$")
FLASH_ATTN = {"auto": "auto", "fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager"}
OPTIMIZERS = {"adamw_torch": "adamw_torch", "adamw_hf": "adamw_torch", "adamw_torch_fused": "adamw_torch",
              "adamw_8bit": "adamw_8bit", "adamw_bnb_8bit": "adamw_8bit", "paged_adamw_8bit": "paged_adamw_8bit",
              "adafactor": "adafactor"}
# keys that change nothing we train, and why they are not carried over
IGNORED = {
    "output_dir": "the studio keeps each run in its own run directory",
    "overwrite_output_dir": "every run gets a fresh run directory",
    "overwrite_cache": "the studio tokenizes each run afresh",
    "preprocessing_num_workers": "tokenizing runs in the training process",
    "dataloader_num_workers": "the studio sets data loading itself",
    "plot_loss": "the Runs page draws the loss curve live",
    "report_to": "the studio logs metrics to the run's events.jsonl",
    "ddp_timeout": "the studio sets distributed timeouts itself",
    "trust_remote_code": "the studio never runs code shipped with a model",
    "per_device_eval_batch_size": "evaluation uses per_device_train_batch_size",
    "eval_strategy": "the studio evaluates every eval_steps when there is validation data",
    "evaluation_strategy": "the studio evaluates every eval_steps when there is validation data",
    "save_strategy": "the studio saves every save_steps",
    "logging_dir": "metrics go to the run's events.jsonl",
    "run_name": "name the run on the Train page",
    "resume_from_checkpoint": "resume a run from the Runs page",
    "do_eval": "evaluation runs when there is validation data (val_size or eval_dataset)",
    "do_predict": "use the Evaluate page for predictions",
    "predict_with_generate": "use the Evaluate page for predictions",
    "quantization_method": "QLoRA here quantizes with bitsandbytes",
    "pissa_convert": "a PiSSA adapter is always saved as a plain LoRA here",
    "pissa_iter": "the studio's PiSSA uses its own fast SVD",
    "neat_packing": "packing here never lets examples attend to each other (always 'neat')",
}

# every LF key some mapper below reads: one left unused did not apply to this run (a lora_* key of a full run)
MAPPED = {
    "model_name_or_path", "stage", "do_train", "finetuning_type", "quantization_bit", "quantization_type",
    "double_quantization", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "additional_target",
    "use_rslora", "use_dora", "loraplus_lr_ratio", "pissa_init", "freeze_trainable_layers",
    "freeze_trainable_modules", "freeze_extra_modules", "dataset", "eval_dataset", "template", "cutoff_len",
    "max_samples", "train_on_prompt", "packing", "val_size", "eval_steps", "mix_strategy", "interleave_probs",
    "learning_rate", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
    "weight_decay", "max_grad_norm", "neftune_noise_alpha", "seed", "logging_steps", "save_steps",
    "save_total_limit", "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "optim", "bf16", "fp16",
    "pure_bf16", "pref_beta", "pref_loss", "pref_ftx", "kto_chosen_weight", "kto_rejected_weight", "simpo_gamma",
    "flash_attn", "enable_liger_kernel", "disable_gradient_checkpointing", "deepspeed",
}
