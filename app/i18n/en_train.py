"""English: strings of the Train page and its config row (Load/Download config, suggested settings). Part of
:data:`app.i18n.en.MESSAGES`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "train.intro": (
        "Choose a base model and one or more datasets, pick a stage and a method and start. **Preview config & "
        "command** shows (and checks) exactly what would run. A started run keeps going when you close the browser: "
        "follow it in **Runs**. **Start from…** fills the form from the suggested settings, a built-in preset or an "
        "earlier run; **Download config** saves it as YAML for `tunesmith train`, **Load config** reads one back "
        "(a LLaMA-Factory training YAML too)."
    ),
    "train.base_model": "Base model",
    "train.base_model_help": "A model of this studio (the bundled one, or a folder under the models directory), or "
                             "the full path of a Hugging Face-format model folder.",
    "train.datasets": "Datasets",
    "train.datasets_help": "One or more registered datasets. Several are concatenated, or mixed by weight in "
                           "“Dataset mixture & validation”. Upload more in the Datasets tab.",
    "train.method": "Method",
    "train.lora_variants": "LoRA variants",
    "train.section_training": "#### Training",
    "train.advanced": "Advanced",
    "train.preference_help": (
        "**Preference training** (stage dpo: preference datasets; kto: KTO or preference datasets). The reference "
        "model is the base model: with LoRA/QLoRA the base with the adapter switched off, with full/freeze a frozen "
        "copy. Batches are padded (packing is off)."
    ),
    "train.distributed": "Distributed: GPUs, DeepSpeed ZeRO, FSDP, several machines",
    "train.distributed_help": (
        "**Distributed** (GPU machines): one process per GPU of the job by default (DDP when there are several). "
        "DeepSpeed ZeRO needs the deepspeed package; FSDP2 shards the parameters. Several machines: run the same "
        "config on each with its own rank."
    ),
    "train.run_name": "Run name (optional)",
    "train.run_name_placeholder": "e.g. smol-lora-r8",
    "train.preview": "Preview config & command",
    "train.start": "▶ Start training",
    "train.open_run": "Open this run in Runs →",
    "train.config_json": "Config JSON (what Start training sends)",
    "train.schema_rejects": "⚠ **The form has values the run config does not accept:**",
    "train.api_refuses": "The API would refuse this run.",
    "train.api_refused": "The API refused the run.",
    "train.preview_ok": "✓ Valid run config. Press **Start training** to submit it. It would launch:",
    "train.preview_file": "`{name}` (written into the run directory):",
    "train.started": "✓ Started run **{name}** — id `{id}`, state `{state}`. Follow it live in the **Runs** tab.",
    "train.mixture_group": "Dataset mixture & validation",
    "train.mixture_intro": (
        "**Weights** set each dataset's share of the training examples (e.g. 0.7 and 0.3, or 2 and 1). Leave every "
        "weight blank to use every row of each dataset once. With weights the mixture is as large as it can be "
        "without repeating a row, unless you set a **mixture size**. **Max samples** takes only the first N usable "
        "rows of that dataset. For the evaluation loss, hold out a share (*Validation share* under Advanced) **or** "
        "pick validation datasets here."
    ),
    "train.mixture": "Mixture (one row per chosen dataset)",
    "train.mixture_id": "id",
    "train.mixture_dataset": "dataset",
    "train.mixture_weight": "weight",
    "train.mixture_max": "max samples",
    "train.val_datasets": "Validation datasets",
    "train.val_datasets_help": "Datasets whose rows give the evaluation loss instead of a held-out share "
                               "(Validation share must then be 0).",
    "config.start_from": "Start from…",
    "config.start_from_help": "The settings suggested for the model, a built-in preset or an earlier run (its exact "
                              "settings): fills every field below.",
    "config.load": "Load config (YAML)",
    "config.download": "Download config (YAML)",
    "config.file": "Config file (runs with `tunesmith train FILE`)",
    "config.suggested": "✨ Suggested settings for the selected base model (its size, this machine's memory)",
    "config.preset": "Preset · {name}",
    "config.preset_described": "Preset · {name} — {description}",
    "config.run": "Run · {label}",
    "config.no_preset": "⚠ There is no preset {name!r} any more; pick another.",
    "config.unreadable": "Could not read that configuration.",
    "config.from_preset": "preset **{name}**",
    "config.from_run": "run **{name}** (`{id}`)",
    "config.from_file": "**{name}**",
    "config.lists_unreadable": "Could not read this studio's models and datasets, so nothing was applied.",
    "config.filled": "✓ Filled the form from {origin}.",
    "config.filled_except": "⚠ Filled the form from {origin}, except {count} values that could not be applied:",
    "config.filled_except.one": "⚠ Filled the form from {origin}, except 1 value that could not be applied:",
    "config.api_refuses": "The API would refuse this run as it stands:",
    "config.api_accepts": "✓ The API accepts this config: **Preview** shows the command, **Start training** runs it.",
    "config.invalid_stored": "✗ That configuration is not valid for this version of the studio, so nothing was "
                             "applied:",
    "config.file_rejected": "✗ **The config file was not applied** (the form is unchanged):",
    "config.download_rejected": "⚠ **The form has values the run config does not accept**, so no file was written:",
    "config.downloaded": "✓ `{filename}` holds exactly what **Start training** would send. Run it with "
                         "`tunesmith train {filename}`, or load it here later.",
    "config.pick_model_first": "⚠ Pick a base model first; the suggestion depends on its size.",
    "config.no_suggestion": "No suggestion for this model.",
    "config.from_suggestion": "the settings suggested for **{model}** ({notes})",
    "config.model_hint": "ℹ {note} Suggested here: {summary}. Pick **✨ Suggested settings** in *Start from…* to "
                         "apply.",
    "config.note_size": "{params} parameters ({layers} layers, hidden size {hidden}).",
    "config.note_cpu": "No GPU here: LoRA on the CPU ({cores} cores), bf16 where the CPU supports it.",
    "config.device_cpu": "CPU ({cores} cores)",
    "config.device_gpus": "{count} × {gpu} ({free} free)",
    "config.suggestion_summary": "{method} r {rank}, lr {lr}, batch {batch} × {accum}, cutoff {cutoff} on {device}",
    "config.dataset_missing": "dataset {ref!r} is not registered in this studio (deleted, or from another studio): "
                              "left out of {where}. Upload it in Datasets and pick it again.",
    "config.model_missing": "base model {model!r} is not in this studio's model list: Base model keeps its current "
                            "choice. Put the model under the models folder (see README) or pick another.",
    "config.dropped": "{where}: {msg} — not applied, the field keeps its default",
    "config.lf_warnings": "LLaMA-Factory settings not applied:",
    "config.too_big": "{name} is {size} bytes; a run config is a few hundred. Pick the YAML file that Download config (YAML) wrote, a preset or a LLaMA-Factory training YAML.",
    "config.not_text": "{name} is not a text file; pick a .yaml run config.",
    "config.unreadable_file": "cannot read {name}: {error}",
    "config.from_lf_file": "**{name}** (a LLaMA-Factory training YAML, its keys mapped to this studio's)",
    # stage-aware datasets, options this machine refuses (GET /capabilities), stage grpo and its rewards editor
    "train.capabilities": "what this machine accepts",
    "train.datasets_for_stage": "Datasets that stage {stage} trains on: {kinds}. Upload more in the Datasets tab.",
    "train.stage_dropped": "ℹ Stage {stage} cannot train on {names}: removed from the datasets.",
    "train.refused_choice": "{label} (not on this machine)",
    "train.reason_needs_gpu": "needs a CUDA GPU and this machine has none; use {instead}",
    "train.reason_needs_package": "needs the {package} package, which is not installed: {fix}",
    "train.reason_either": "{items} or {last}",
    "train.refused_reason": "⊘ {value}: {reason}",
    "train.grpo_help": (
        "**GRPO** (reinforcement learning with reward functions): for each prompt of the dataset (the last user "
        "turn) the model writes several replies, the rewards below score them, and training moves the model toward "
        "the replies that beat their group's average. A chat dataset's reference reply is what exact match and "
        "contains compare with."
    ),
    "train.rewards": "Rewards (the run's reward is their weighted sum)",
    "train.rewards_help": (
        "Add at least one reward. Built-ins score each reply 0 or 1; a reward model scores it with a reward model "
        "you trained here (stage rm); a Python reward is a function from the studio's rewards folder. Edit a "
        "weight in the table; a negative weight makes a penalty."
    ),
    "train.reward_col_reward": "reward",
    "train.reward_col_setting": "setting",
    "train.reward_col_weight": "weight",
    "train.reward_kind": "Reward to add",
    "ph.reward_pattern": r"^\d+$",
    "train.reward_pattern": "Pattern (regular expression)",
    "train.reward_target": "Target length (characters)",
    "train.reward_run": "Reward model (a finished rm run)",
    "train.reward_function": "Python reward function",
    "train.reward_weight": "Weight",
    "train.reward_add": "+ Add reward",
    "train.reward_remove": "Remove last",
    "train.reward_no_rm_runs": "⚠ No finished reward-model run yet: train one with stage rm on a preference dataset "
                               "first.",
    "train.reward_no_python": "⚠ No Python reward functions yet: the operator puts .py files with reward functions "
                              "into the studio's rewards folder, `{folder}`.",
    "train.reward_needs_setting": "⚠ Give the {reward} reward its setting first.",
    "reward.exact_match": "exact match (the reference reply)",
    "reward.contains": "contains the reference reply",
    "reward.regex": "matches a pattern (regex)",
    "reward.length": "length near a target",
    "reward.json_valid": "valid JSON",
    "reward.reward_model": "reward model (rm run)",
    "reward.python": "Python function",
    "field.grpo_num_generations": "Replies per prompt",
    "field.grpo_max_completion_length": "Max reply length (tokens)",
    "field.grpo_temperature": "Sampling temperature",
    "field.grpo_beta": "KL weight β",
    "field.grpo_loss_type": "Loss variant",
    "help.grpo_num_generations": "Replies sampled for each prompt; their average reward is the baseline. Batch size × "
                                 "gradient accumulation must be a multiple of it.",
    "help.grpo_max_completion_length": "The longest reply sampled; it must leave room for the prompt within the "
                                       "cutoff length.",
    "help.grpo_temperature": "Higher = more varied replies to compare.",
    "help.grpo_beta": "How strongly the model is kept near the starting model (0 = not at all, and no reference "
                      "model is loaded; DeepSeek-R1 used 0.001).",
    "help.grpo_loss_type": "How token losses are averaged: grpo = per reply (favours short replies), dr_grpo = by a "
                           "constant (no length bias), dapo = over all tokens of the batch (the default), bnpo = over "
                           "the tokens of each micro-batch.",
}
