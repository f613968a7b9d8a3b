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
}
