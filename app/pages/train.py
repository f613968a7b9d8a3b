"""Train tab: a form built from RunConfig (labels, defaults, bounds) that submits POST /jobs."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
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
from app.pages.train_data import build_data_section
from app.pages.train_fields import schema_widget
from app.pages.train_grpo import GrpoSection, build_grpo_section
from app.pages.train_options import (
    REFUSABLE,
    dataset_catalog,
    filter_for_stage,
    method_refusals,
    refusal_updates,
)
from app.pages.train_suggest import model_hint
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
    fill_from: Refresh  # fills the form from a "Start from…" choice (inputs: that choice, then the form's fields)
    stage_filter: Refresh  # after a fill: only the datasets the stage takes are offered


def model_choices(models: list[Model], lang: str) -> tuple[list[tuple[str, str]], str | None]:
    choices = [
        (t("ui.bundled", lang, id=m["id"]) if m.get("bundled") else m["id"], m["id"]) for m in models if m.get("id")
    ]
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
    parts = [
        t("train.preview_ok", lang),
        "```\n" + " \\\n    ".join(shlex.quote(a) for a in launch.get("argv") or []) + "\n```",
    ]
    for name, text in (launch.get("files") or {}).items():
        parts.append(t("train.preview_file", lang, name=name) + f"\n```\n{text}\n```")
    return "\n\n".join(parts)


def collect_config(keys: list[str], values: Sequence[Any]) -> dict[str, Any]:
    """The RunConfig dict of the form whose widget values, in ``keys`` order, are ``values``."""
    return build_config(dict(zip(keys, values)))


def on_method(name: str) -> tuple[Any, ...]:
    return (
        method_help(name),
        gr.Group(visible=name in ("lora", "qlora")),
        gr.Group(visible=name == "qlora"),
        gr.Group(visible=name == "freeze"),
    )


def on_stage(lang: str, stage: str, catalog: dict[str, Any] | None, selected: list[str] | None,
             val_selected: list[str] | None, table: list[list] | None) -> tuple[Any, ...]:
    """The stage's own settings shown, and only the datasets it trains on offered (the others dropped, named)."""
    return (gr.Group(visible=stage in PREFERENCE_STAGES), gr.Group(visible=stage == "grpo"),
            *filter_for_stage(lang, stage, catalog, selected, val_selected, table))


def show_model_hint(client: TunesmithClient, lang: str, model: str | None) -> str:
    return model_hint(client, model, lang)


def do_preview(client: TunesmithClient, lang: str, *values: Any, keys: list[str]) -> tuple[str, Any]:
    config = collect_config(keys, values)
    problems = validate_config(config)
    if problems:
        message = t("train.schema_rejects", lang) + "\n\n" + "\n".join(f"- {p}" for p in problems)
    else:
        message = launch_preview_markdown(client, config, lang)
    return message, gr.Code(value=json.dumps(config, indent=2), visible=True)


def do_start(client: TunesmithClient, lang: str, name: str, *values: Any, keys: list[str]) -> tuple[Any, ...]:
    config = collect_config(keys, values)
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
    message = t("train.started", lang, name=job.get("name") or job.get("id"), id=job.get("id"), state=job.get("state"))
    return message, gr.Code(value=body, visible=True), job.get("id"), gr.Button(visible=True)


def refresh_choices(
    client: TunesmithClient,
    lang: str,
    current_model: str | None,
    current_datasets: list[str] | None,
    current_val: list[str] | None,
    table: list[list] | None,
    stage: str | None,
) -> tuple[Any, ...]:
    """Re-read models, datasets (those the stage takes), Start from… sources and what this machine refuses."""
    warnings = []
    model_update: Any = gr.skip()
    datasets_update = val_update = names = table_update = catalog = note = gr.skip()
    try:
        choices, default = model_choices(client.list_models(), lang)
        ids = [c[1] for c in choices]
        value = current_model if current_model and (current_model in ids or "/" in current_model) else default
        model_update = gr.Dropdown(choices=choices, value=value)
    except ApiError as exc:
        warnings.append(f"{t('ui.models', lang)}: {exc}")
    capabilities = None
    try:
        capabilities = client.capabilities()
    except ApiError as exc:
        warnings.append(f"{t('train.capabilities', lang)}: {exc}")
    try:
        catalog = dataset_catalog(client.list_datasets(), capabilities, lang)
        datasets_update, val_update, names, table_update, note = filter_for_stage(
            lang, stage, catalog, current_datasets, current_val, table
        )
    except ApiError as exc:
        warnings.append(f"{t('ui.datasets', lang)}: {exc}")
    try:
        sources = gr.Dropdown(
            choices=train_config.start_choices(client.list_presets(), client.list_jobs(), lang), value=None
        )
    except ApiError as exc:
        sources = gr.skip()
        warnings.append(f"{t('ui.presets_runs', lang)}: {exc}")
    if warnings:
        gr.Warning(t("ui.refresh_failed", lang, what="; ".join(warnings)))
    refusals, style = refusal_updates(capabilities, lang)
    return (model_update, datasets_update, val_update, names, table_update, sources, catalog, note,
            style if capabilities else gr.skip(), method_refusals(capabilities, lang), *refusals)


@dataclass
class _MethodWidgets:
    help: gr.Markdown
    refused: gr.Markdown  # why a method is marked as refused here
    lora_group: gr.Group
    qlora_group: gr.Group
    freeze_group: gr.Group


@dataclass
class _Actions:
    run_name: gr.Textbox
    preview: gr.Button
    start: gr.Button
    status: gr.Markdown
    open_run: gr.Button
    config_view: gr.Code
    started_job: gr.State


def _schema_row(fields: dict[str, Any], names: Sequence[str]) -> None:
    with gr.Row():
        for name in names:
            fields[name] = schema_widget(RunConfig, name, name)


def _build_model_row(fields: dict[str, Any]) -> tuple[gr.Button, gr.Button]:
    """Base model and datasets pickers; returns their two refresh buttons."""
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
    return refresh_models, refresh_datasets


def _build_method(fields: dict[str, Any]) -> _MethodWidgets:
    with gr.Row(equal_height=True):
        # The stage first, as LLaMA-Factory users pick it: it decides which datasets and settings apply.
        fields["stage"] = schema_widget(RunConfig, "stage", "stage")
        fields["method"] = gr.Radio(
            choices=[(t(f"method.{m}"), m) for m in METHODS],
            value="lora",
            label=t("train.method"),
            elem_id="train-method",
            scale=2,
        )
        with gr.Column(scale=2):
            method_help_md = gr.Markdown(method_help("lora"), elem_id="train-method-help")
            refused_md = gr.Markdown(elem_id="train-method-refused")
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
                LoraMethod, "extra_trainable_modules", "method.lora_extra_trainable_modules"
            )
    with gr.Group(visible=False, elem_id="train-qlora-group") as qlora_group:
        with gr.Row():
            for name in ("bits", "quant_type", "double_quant"):
                fields[f"method.{name}"] = schema_widget(QLoraMethod, name, f"method.qlora_{name}")
    with gr.Group(visible=False, elem_id="train-freeze-group") as freeze_group:
        with gr.Row():
            for name in ("trainable_layers", "trainable_modules", "extra_modules"):
                key = "method.trainable_layers" if name == "trainable_layers" else f"method.freeze_{name}"
                fields[f"method.{name}"] = schema_widget(FreezeMethod, name, key)
    return _MethodWidgets(method_help_md, refused_md, lora_group, qlora_group, freeze_group)


def _build_training(client: TunesmithClient, fields: dict[str, Any]) -> tuple[gr.Group, GrpoSection]:
    """The training settings; returns the preference group (shown for stages dpo/kto) and the grpo section."""
    gr.Markdown(t("train.section_training"))
    _schema_row(fields, ("learning_rate", "num_epochs", "max_steps"))
    _schema_row(fields, ("per_device_batch_size", "gradient_accumulation_steps", "cutoff_len"))
    _schema_row(fields, ("compute_type", "logging_steps", "seed"))
    # Preference settings sit with the training settings (not under Advanced): a dpo/kto run needs them.
    with gr.Group(visible=False, elem_id="train-preference-group") as preference_group:
        gr.Markdown(t("train.preference_help"), elem_id="train-preference-help")
        with gr.Row():
            for name in PreferenceConfig.model_fields:
                fields[f"preference.{name}"] = schema_widget(PreferenceConfig, name, f"pref_{name}")
    return preference_group, build_grpo_section(client, fields, schema_widget)


def _build_advanced(fields: dict[str, Any]) -> None:
    with gr.Accordion(t("train.advanced"), open=False, elem_id="train-advanced"):
        _schema_row(fields, ("lr_scheduler", "warmup_ratio", "weight_decay", "max_grad_norm"))
        _schema_row(fields, ("optimizer", "attn_implementation", "use_liger_kernel", "neftune_noise_alpha"))
        _schema_row(fields, ("val_size", "eval_steps", "max_samples"))
        _schema_row(fields, ("save_steps", "save_total_limit", "gradient_checkpointing"))
        _schema_row(fields, ("early_stopping_patience", "early_stopping_threshold", "load_best_model_at_end"))
        _schema_row(fields, ("report_to", "mlflow_tracking_uri"))
        _schema_row(fields, ("packing", "batch_tokens", "chat_template", "train_on_prompt"))
        _schema_row(fields, ("init_from_run",))
        with gr.Accordion(t("train.distributed"), open=False, elem_id="train-distributed"):
            gr.Markdown(t("train.distributed_help"))
            names = section_fields(DistributedConfig)
            for row_names in (names[:4], names[4:7], names[7:]):
                with gr.Row():
                    for name in row_names:
                        fields[f"distributed.{name}"] = schema_widget(DistributedConfig, name, f"dist_{name}")


def _build_actions() -> _Actions:
    with gr.Row(equal_height=True):
        run_name = gr.Textbox(
            label=t("train.run_name"), placeholder=t("train.run_name_placeholder"), elem_id="train-name", scale=3
        )
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
    return _Actions(run_name, preview, start, status, open_run, config_view, gr.State(None))


def build(client: TunesmithClient) -> TrainPage:
    gr.Markdown(t("train.intro"))
    config_row = train_config.build_row()
    fields: dict[str, gr.components.Component] = {}
    refresh_models, refresh_datasets = _build_model_row(fields)
    model_hint = gr.Markdown(elem_id="train-model-hint")
    stage_note = gr.Markdown(elem_id="train-stage-note")  # the datasets a stage change dropped
    catalog = gr.State({})  # datasets with their kinds and the kinds of each stage (train_options.dataset_catalog)
    refused_style = gr.HTML("", elem_id="train-refused-style", padding=False)  # greys refused radio choices
    data = build_data_section(fields["datasets"], schema_widget)
    fields["datasets.mixture"] = data.mixture  # folded into "datasets" by build_config
    fields["mixture_size"], fields["val_datasets"] = data.mixture_size, data.val_datasets
    method = _build_method(fields)
    preference_group, grpo = _build_training(client, fields)
    _build_advanced(fields)
    actions = _build_actions()

    keys = list(fields)
    inputs = [fields[k] for k in keys]
    fields["method"].change(
        on_method,
        inputs=[fields["method"]],
        outputs=[method.help, method.lora_group, method.qlora_group, method.freeze_group],
    )
    fields["base_model"].change(
        localized(partial(show_model_hint, client)),
        inputs=[fields["base_model"]],
        outputs=[model_hint],
        show_progress="hidden",
    )
    stage_inputs = [fields["stage"], catalog, fields["datasets"], data.val_datasets, data.mixture]
    stage_outputs = [fields["datasets"], data.val_datasets, data.names, data.mixture, stage_note]
    fields["stage"].change(localized(on_stage), inputs=stage_inputs,
                           outputs=[preference_group, grpo.group, *stage_outputs], show_progress="hidden")
    actions.preview.click(
        localized(partial(do_preview, client, keys=keys)), inputs=inputs, outputs=[actions.status, actions.config_view]
    )
    actions.start.click(
        localized(partial(do_start, client, keys=keys)),
        inputs=[actions.run_name, *inputs],
        outputs=[actions.status, actions.config_view, actions.started_job, actions.open_run],
    )
    filled, fill = train_config.wire(client, config_row, fields, data.names, actions.run_name,
                                     partial(collect_config, keys))
    fill_from = Refresh(*fill)  # Runs' "Continue training" fills the form as "Start from…" does
    for event in filled:  # a filled form offers (and keeps) only the datasets its stage takes
        event.then(localized(filter_for_stage), inputs=stage_inputs, outputs=stage_outputs, show_progress="hidden")
    refresh = Refresh(
        localized(partial(refresh_choices, client)),
        [fields["base_model"], fields["datasets"], data.val_datasets, data.mixture, fields["stage"]],
        [fields["base_model"], fields["datasets"], data.val_datasets, data.names, data.mixture, config_row.start_from,
         catalog, stage_note, refused_style, method.refused, *[fields[key] for key in REFUSABLE]],
    )
    refresh.on(refresh_models.click)
    refresh.on(refresh_datasets.click)
    return TrainPage(
        model=fields["base_model"],
        datasets=fields["datasets"],
        started_job=actions.started_job,
        open_run=actions.open_run,
        refresh=refresh,
        fields=fields,
        start_from=config_row.start_from,
        fill_from=fill_from,
        stage_filter=Refresh(localized(filter_for_stage), stage_inputs, stage_outputs),
    )
