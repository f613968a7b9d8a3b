"""Train tab: a form built from RunConfig (labels, defaults, bounds) that submits POST /jobs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.client import ApiError, Model, TunesmithClient
from app.form import (
    METHODS,
    build_config,
    section_fields,
    validate_config,
)
from app.format import error_markdown
from app.i18n import localized, t
from app.pages import Refresh, train_config
from app.pages.datasets import dataset_label
from app.pages.train_data import build_data_section, dataset_choice_updates
from app.pages.train_fields import schema_widget
from backend.config.distributed import DistributedConfig
from backend.config.schema import (
    PREFERENCE_STAGES,
    FreezeMethod,
    LoraMethod,
    PreferenceConfig,
    QLoraMethod,
    RunConfig,
)

@dataclass
class TrainPage:
    model: gr.Dropdown
    datasets: gr.Dropdown
    started_job: gr.State
    open_run: gr.Button
    refresh: Refresh
    fields: dict[str, Any]  # form key (as app.form.build_config reads it) -> widget
    start_from: gr.Dropdown


def model_choices(models: list[Model], lang: str) -> tuple[list[tuple[str, str]], str | None]:
    choices = [(t("ui.bundled", lang, id=m["id"]) if m.get("bundled") else m["id"], m["id"])
               for m in models if m.get("id")]
    default = next((m["id"] for m in models if m.get("bundled")), choices[0][1] if choices else None)
    return choices, default


def method_help(method: str) -> Any:
    return t(f"method.{method}_help")


def launch_preview_markdown(client: TunesmithClient, config: dict[str, Any], lang: str) -> str:
    """What the backend would launch for ``config`` (argv + accelerate/DeepSpeed files), or why it would refuse."""
    try:
        launch = client.preview_job(config)
    except ApiError as exc:
        return t("train.api_refuses", lang) + "\n\n" + error_markdown(exc, lang)
    parts = [t("train.preview_ok", lang),
             "```\n" + " \\\n    ".join(shlex.quote(a) for a in launch.get("argv") or []) + "\n```"]
    for name, text in (launch.get("files") or {}).items():
        parts.append(t("train.preview_file", lang, name=name) + f"\n```\n{text}\n```")
    return "\n\n".join(parts)


def build(client: TunesmithClient) -> TrainPage:
    gr.Markdown(t("train.intro"))
    config_row = train_config.build_row()
    fields: dict[str, gr.components.Component] = {}

    with gr.Row(equal_height=True):
        fields["base_model"] = gr.Dropdown(
            label=t("train.base_model"),
            info=t("train.base_model_help"),
            choices=[],
            allow_custom_value=True,
            elem_id="train-model",
            scale=4,
        )
        refresh_models = gr.Button("↻", size="sm", scale=0, min_width=44, elem_id="train-refresh-models")
        fields["datasets"] = gr.Dropdown(
            label=t("train.datasets"),
            info=t("train.datasets_help"),
            choices=[],
            multiselect=True,
            elem_id="train-datasets",
            scale=4,
        )
        refresh_datasets = gr.Button("↻", size="sm", scale=0, min_width=44, elem_id="train-refresh-datasets")
    model_hint = gr.Markdown(elem_id="train-model-hint")
    data = build_data_section(fields["datasets"], schema_widget)
    fields["datasets.mixture"] = data.mixture  # folded into "datasets" by build_config
    fields["mixture_size"], fields["val_datasets"] = data.mixture_size, data.val_datasets

    with gr.Row(equal_height=True):
        # The stage first, as LLaMA-Factory users pick it: it decides which datasets and settings apply.
        fields["stage"] = schema_widget(RunConfig, "stage", "stage")
        method = gr.Radio(
            choices=[(t(f"method.{m}"), m) for m in METHODS],
            value="lora",
            label=t("train.method"),
            elem_id="train-method",
            scale=2,
        )
        method_help_md = gr.Markdown(method_help("lora"), elem_id="train-method-help")
    fields["method"] = method

    with gr.Group(visible=True, elem_id="train-lora-group") as lora_group:
        with gr.Row():
            for name in ("rank", "alpha", "dropout"):
                fields[f"method.{name}"] = schema_widget(LoraMethod, name, f"method.lora_{name}")
            fields["method.targets"] = schema_widget(LoraMethod, "targets", "method.lora_targets")
        with gr.Accordion(t("train.lora_variants"), open=False, elem_id="train-lora-variants"):
            with gr.Row():
                for name in ("use_rslora", "use_dora", "init", "loraplus_lr_ratio"):
                    fields[f"method.{name}"] = schema_widget(LoraMethod, name, f"method.lora_{name}")
            fields["method.extra_trainable_modules"] = schema_widget(
                LoraMethod, "extra_trainable_modules", "method.lora_extra_trainable_modules")
    with gr.Group(visible=False, elem_id="train-qlora-group") as qlora_group:
        with gr.Row():
            for name in ("bits", "quant_type", "double_quant"):
                fields[f"method.{name}"] = schema_widget(QLoraMethod, name, f"method.qlora_{name}")
    with gr.Group(visible=False, elem_id="train-freeze-group") as freeze_group:
        with gr.Row():
            for name in ("trainable_layers", "trainable_modules", "extra_modules"):
                key = "method.trainable_layers" if name == "trainable_layers" else f"method.freeze_{name}"
                fields[f"method.{name}"] = schema_widget(FreezeMethod, name, key)

    gr.Markdown(t("train.section_training"))
    with gr.Row():
        for name in ("learning_rate", "num_epochs", "max_steps"):
            fields[name] = schema_widget(RunConfig, name, name)
    with gr.Row():
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "cutoff_len"):
            fields[name] = schema_widget(RunConfig, name, name)
    with gr.Row():
        for name in ("compute_type", "logging_steps", "seed"):
            fields[name] = schema_widget(RunConfig, name, name)
    # Preference settings sit with the training settings (not under Advanced): a dpo/kto run needs them.
    with gr.Group(visible=False, elem_id="train-preference-group") as preference_group:
        gr.Markdown(t("train.preference_help"), elem_id="train-preference-help")
        with gr.Row():
            for name in PreferenceConfig.model_fields:
                fields[f"preference.{name}"] = schema_widget(PreferenceConfig, name, f"pref_{name}")

    with gr.Accordion(t("train.advanced"), open=False, elem_id="train-advanced"):
        with gr.Row():
            for name in ("lr_scheduler", "warmup_ratio", "weight_decay", "max_grad_norm"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("optimizer", "attn_implementation", "use_liger_kernel", "neftune_noise_alpha"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("val_size", "eval_steps", "max_samples"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("save_steps", "save_total_limit", "gradient_checkpointing"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("early_stopping_patience", "early_stopping_threshold", "load_best_model_at_end"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("report_to", "mlflow_tracking_uri"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            for name in ("packing", "batch_tokens", "chat_template", "train_on_prompt"):
                fields[name] = schema_widget(RunConfig, name, name)
        with gr.Row():
            fields["init_from_run"] = schema_widget(RunConfig, "init_from_run", "init_from_run")
        with gr.Accordion(t("train.distributed"), open=False,
                          elem_id="train-distributed"):
            gr.Markdown(t("train.distributed_help"))
            names = section_fields(DistributedConfig)
            for row_names in (names[:4], names[4:7], names[7:]):
                with gr.Row():
                    for name in row_names:
                        fields[f"distributed.{name}"] = schema_widget(DistributedConfig, name, f"dist_{name}")

    with gr.Row(equal_height=True):
        run_name = gr.Textbox(label=t("train.run_name"), placeholder=t("train.run_name_placeholder"), elem_id="train-name", scale=3)
        preview = gr.Button(t("train.preview"), elem_id="train-preview", scale=1)
        start = gr.Button(t("train.start"), variant="primary", elem_id="train-start", scale=1)
    status = gr.Markdown(elem_id="train-status")
    open_run = gr.Button(t("train.open_run"), visible=False, size="sm", elem_id="train-open-run")
    config_view = gr.Code(
        language="json",
        label=t("train.config_json"),
        visible=False,
        interactive=False,
        show_line_numbers=False,
        elem_id="train-config",
    )
    started_job = gr.State(None)

    keys = list(fields)
    inputs = [fields[k] for k in keys]

    def collect(values: tuple[Any, ...]) -> dict[str, Any]:
        return build_config(dict(zip(keys, values)))

    def on_method(name: str):
        return (
            method_help(name),
            gr.Group(visible=name in ("lora", "qlora")),
            gr.Group(visible=name == "qlora"),
            gr.Group(visible=name == "freeze"),
        )

    def do_preview(lang: str, *values: Any):
        config = collect(values)
        problems = validate_config(config)
        if problems:
            message = t("train.schema_rejects", lang) + "\n\n" + "\n".join(f"- {p}" for p in problems)
        else:
            message = launch_preview_markdown(client, config, lang)
        return message, gr.Code(value=json.dumps(config, indent=2), visible=True)

    def do_start(lang: str, name: str, *values: Any):
        config = collect(values)
        body = json.dumps(config, indent=2)
        try:
            job = client.create_job(config, name=(name or "").strip() or None)
        except ApiError as exc:
            return (
                t("train.api_refused", lang) + "\n\n" + error_markdown(exc, lang),
                gr.Code(value=body, visible=True),
                gr.skip(),
                gr.Button(visible=False),
            )
        message = t("train.started", lang, name=job.get("name") or job.get("id"), id=job.get("id"),
                    state=job.get("state"))
        return message, gr.Code(value=body, visible=True), job.get("id"), gr.Button(visible=True)

    def refresh_choices(lang: str, current_model: str | None, current_datasets: list[str] | None,
                        current_val: list[str] | None, table: list[list] | None):
        warnings = []
        model_update: Any = gr.skip()
        datasets_update = val_update = names = table_update = gr.skip()
        try:
            choices, default = model_choices(client.list_models(), lang)
            ids = [c[1] for c in choices]
            value = current_model if current_model and (current_model in ids or "/" in current_model) else default
            model_update = gr.Dropdown(choices=choices, value=value)
        except ApiError as exc:
            warnings.append(f"{t('ui.models', lang)}: {exc}")
        try:
            items = client.list_datasets()
            ds_choices = [(dataset_label(ds, lang), ds["id"]) for ds in items if ds.get("id")]
            datasets_update, val_update, names, table_update = dataset_choice_updates(
                ds_choices, current_datasets, current_val, table)
        except ApiError as exc:
            warnings.append(f"{t('ui.datasets', lang)}: {exc}")
        try:
            sources = gr.Dropdown(choices=train_config.start_choices(client.list_presets(), client.list_jobs(), lang),
                                  value=None)
        except ApiError as exc:
            sources = gr.skip()
            warnings.append(f"{t('ui.presets_runs', lang)}: {exc}")
        if warnings:
            gr.Warning(t("ui.refresh_failed", lang, what="; ".join(warnings)))
        return model_update, datasets_update, val_update, names, table_update, sources

    method.change(on_method, inputs=[method], outputs=[method_help_md, lora_group, qlora_group, freeze_group])
    fields["base_model"].change(localized(lambda lang, model: train_config.model_hint(client, model, lang)), inputs=[fields["base_model"]],
                                outputs=[model_hint], show_progress="hidden")
    fields["stage"].change(lambda stage: gr.Group(visible=stage in PREFERENCE_STAGES), inputs=[fields["stage"]],
                           outputs=[preference_group])
    preview.click(localized(do_preview), inputs=inputs, outputs=[status, config_view])
    start.click(localized(do_start), inputs=[run_name, *inputs], outputs=[status, config_view, started_job, open_run])
    train_config.wire(client, config_row, fields, data.names, run_name, collect)
    refresh = Refresh(localized(refresh_choices), [fields["base_model"], fields["datasets"], data.val_datasets, data.mixture],
                      [fields["base_model"], fields["datasets"], data.val_datasets, data.names, data.mixture,
                       config_row.start_from])
    refresh.on(refresh_models.click)
    refresh.on(refresh_datasets.click)
    return TrainPage(
        model=fields["base_model"],
        datasets=fields["datasets"],
        started_job=started_job,
        open_run=open_run,
        refresh=refresh,
        fields=fields,
        start_from=config_row.start_from,
    )
