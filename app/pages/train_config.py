"""The Train form's configuration in and out: start from a built-in preset or a previous run, download the form
as a YAML run config (it runs with ``tunesmith train FILE``), load such a file back.

The pure parts ("Start from…" choices, a stored config's valid fields, fitting a config to this studio, YAML
in and out) are functions; :func:`wire` connects them to the form via :func:`app.form.config_to_form`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from app.client import ApiError, Dataset, Job, TunesmithClient
from app.downloads import scratch_dir
from app.form import SECTIONS, build_config, config_to_form, validate_config
from app.format import error_markdown
from app.i18n import localized, t
from app.pages.datasets import dataset_label
from app.pages.runs import job_label
from app.pages.train_config_file import config_file_name, config_yaml, read_config_file
from app.pages.train_data import MIXTURE_HEADERS, dataset_choice_updates, table_value
from app.pages.train_grpo import rewards_table
from app.pages.train_suggest import suggested_config
from backend.config.schema import RunConfig

PRESET, RUN, SUGGESTED = "preset:", "run:", "suggested"
BLANK = "__blank__"  # stands in for a missing base model or dataset while a partial config is validated
NESTED = ("method", *SECTIONS)


@dataclass
class ConfigRow:
    start_from: gr.Dropdown
    load: gr.UploadButton
    download: gr.Button
    file: gr.File
    status: gr.Markdown


def build_row() -> ConfigRow:
    """The row above the form: "Start from…", "Load config (YAML)", "Download config (YAML)"."""
    with gr.Row(equal_height=True):
        start_from = gr.Dropdown(
            label=t("config.start_from"),
            choices=[],
            value=None,
            elem_id="train-start-from",
            scale=4,
            info=t("config.start_from_help"),
        )
        with gr.Column(scale=1, min_width=200):
            load = gr.UploadButton(
                t("config.load"),
                file_types=[".yaml", ".yml", ".json"],
                file_count="single",
                type="filepath",
                size="sm",
                elem_id="train-config-load",
            )
            download = gr.Button(t("config.download"), size="sm", elem_id="train-config-download")
    status = gr.Markdown(elem_id="train-config-status")
    file = gr.File(label=t("config.file"), visible=False, interactive=False, elem_id="train-config-file")
    return ConfigRow(start_from=start_from, load=load, download=download, file=file, status=status)


# -- pure helpers ------------------------------------------------------------------------------------------


def start_choices(presets: list[dict[str, Any]], jobs: list[Job], lang: str) -> list[tuple[str, str]]:
    """Dropdown choices: the suggested settings for the chosen model, every preset (with its description), then
    every run, newest first."""
    choices = [(t("config.suggested", lang), SUGGESTED)]
    choices += [
        (
            t("config.preset_described", lang, name=p["name"], description=p["description"])
            if p.get("description")
            else t("config.preset", lang, name=p["name"]),
            PRESET + p["name"],
        )
        for p in presets
        if p.get("name")
    ]
    jobs = sorted(jobs, key=lambda j: str(j.get("created_at") or ""), reverse=True)
    return choices + [(t("config.run", lang, label=job_label(j, lang)), RUN + j["id"]) for j in jobs if j.get("id")]


def _drop(config: dict[str, Any], loc: Sequence[Any]) -> str | None:
    """Remove the value at a validation error's location (a dataset entry, a sub-config field or a top-level
    field); returns its dotted name, or None when nothing there can be removed."""
    if not loc or loc[0] not in config:
        return None
    head = loc[0]
    if head in ("datasets", "val_datasets") and len(loc) > 1 and isinstance(config[head], list):
        index = loc[1]
        if isinstance(index, int) and index < len(config[head]):
            entry = config[head].pop(index)
            return f"{head} entry {entry.get('id') if isinstance(entry, dict) else entry!r}"
    sub = config[head]
    if head in NESTED and isinstance(sub, dict):
        name = next((p for p in loc[1:] if isinstance(p, str) and p in sub and p != "name"), None)
        if name is not None:
            del sub[name]
            return f"{head}.{name}"
    del config[head]
    return str(head)


def lenient_config(config: dict[str, Any], lang: str) -> tuple[dict[str, Any] | None, list[str]]:
    """A stored config with the values today's schema rejects left out (they take their defaults), and what
    was left out. None when it cannot be made valid that way (a whole-config rule, a missing model/dataset)."""
    config = copy.deepcopy(config)
    problems: list[str] = []
    for _ in range(50):  # one error per round: the others' locations may shift once an entry is gone
        try:
            RunConfig.model_validate(config)
            return config, problems
        except ValidationError as exc:
            err = exc.errors()[0]
        where = _drop(config, err["loc"])
        if where is None:
            loc = ".".join(str(p) for p in err["loc"])
            return None, [*problems, f"{loc}: {err['msg']}" if loc else err["msg"]]
        problems.append(t("config.dropped", lang, where=where, msg=err["msg"]))
    return None, problems


def fit_to_studio(
    values: dict[str, Any], model_ids: Sequence[str], datasets: Sequence[Dataset], lang: str
) -> tuple[dict[str, Any], list[str]]:
    """Form values with datasets named as this studio registers them (ids; a name is looked up) and without
    what this studio lacks: an unknown dataset leaves the selection, an unknown base model keeps the form's
    current choice (its key is removed). Returns the values and one readable line per value not applied."""
    values = dict(values)
    problems: list[str] = []
    ids = {d["id"]: d for d in datasets if d.get("id")}
    names: dict[str, list[str]] = {}
    for d in datasets:
        names.setdefault(str(d.get("name")), []).append(d["id"])

    def resolve(ref: str) -> str | None:
        if ref in ids:
            return ref
        found = names.get(ref, [])
        return found[0] if len(found) == 1 else None

    def missing(ref: str, where: str) -> str:
        return t("config.dataset_missing", lang, ref=ref, where=where)

    rows = []
    for row in values.get("datasets.mixture") or []:
        ref = resolve(row[0])
        if ref is None:
            problems.append(missing(row[0], t("train.datasets", lang)))
        else:
            rows.append([ref, ids[ref].get("name") or ref, *row[2:]])
    values["datasets.mixture"] = rows
    values["datasets"] = [row[0] for row in rows]
    kept_val = []
    for ref in values.get("val_datasets") or []:
        resolved = resolve(ref)
        if resolved is None:
            problems.append(missing(ref, t("train.val_datasets", lang)))
        else:
            kept_val.append(resolved)
    values["val_datasets"] = kept_val
    model = values.get("base_model")
    if model and model not in model_ids and "/" not in model and "\\" not in model:
        problems.append(t("config.model_missing", lang, model=model))
        values.pop("base_model")
    return values, problems


def api_check(client: TunesmithClient, config: dict[str, Any], lang: str) -> str:
    """Whether the API (model, datasets, this machine) would take the run: POST /jobs/preview, creating nothing."""
    try:
        client.preview_job(config)
    except ApiError as exc:
        return t("config.api_refuses", lang) + "\n\n" + error_markdown(exc, lang)
    return t("config.api_accepts", lang)


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


# -- filling the form from a source ------------------------------------------------------------------------


@dataclass
class Filled:
    """What filling the form from a config gives: the form values (a key left out keeps the form's current
    value), the dataset dropdown choices, id -> dataset name, and the message for the user."""

    values: dict[str, Any]
    choices: list[tuple[str, str]]
    names: dict[str, str]
    message: str


def read_source(client: TunesmithClient, choice: str, lang: str) -> tuple[dict[str, Any] | None, str]:
    """The config of a "Start from…" choice and where it comes from, or None and why it cannot be read."""
    try:
        if choice.startswith(PRESET):
            name = choice[len(PRESET) :]
            preset = next((p for p in client.list_presets() if p.get("name") == name), None)
            if preset is None:
                return None, t("config.no_preset", lang, name=name)
            return preset.get("config") or {}, t("config.from_preset", lang, name=name)
        job = client.get_job(choice.removeprefix(RUN))
    except ApiError as exc:
        return None, t("config.unreadable", lang) + "\n\n" + error_markdown(exc, lang)
    return job.get("config") or {}, t("config.from_run", lang, name=job.get("name") or job.get("id"), id=job.get("id"))


def fill_form(
    client: TunesmithClient,
    config: dict[str, Any],
    origin: str,
    problems: list[str],
    current: dict[str, Any],
    lang: str,
) -> Filled | str:
    """Form values for ``config`` (valid for the schema) fitted to this studio's models and datasets, with a
    message saying what could not be applied and whether the API takes the result (``current`` = the form now,
    for the fields kept). A string when this studio's lists cannot be read (nothing is applied then)."""
    try:
        model_ids = [m["id"] for m in client.list_models() if m.get("id")]
        datasets = client.list_datasets()
    except ApiError as exc:
        return t("config.lists_unreadable", lang) + "\n\n" + error_markdown(exc, lang)
    values = form_values(config, lang)
    if isinstance(values, str):
        return values
    values, missing = fit_to_studio(values, model_ids, datasets, lang)
    problems = [*problems, *missing]
    choices = [(dataset_label(d, lang), d["id"]) for d in datasets if d.get("id")]
    names = {d["id"]: str(d.get("name") or d["id"]) for d in datasets if d.get("id")}
    message = t("config.filled", lang, origin=origin)
    if problems:
        message = t("config.filled_except", lang, origin=origin, count=len(problems)) + "\n\n" + _bullets(problems)
    message += "\n\n" + api_check(client, build_config({**current, **values}), lang)
    return Filled(values=values, choices=choices, names=names, message=message)


def form_values(config: dict[str, Any], lang: str) -> dict[str, Any] | str:
    """Form values for ``config``. A config without datasets or a base model (suggested settings picked before a
    dataset, a LLaMA-Factory file naming a model this studio lacks) fills every other field and leaves those two
    as the form has them; a config the schema rejects gives the reason and fills nothing."""
    blanks = {
        key: placeholder for key, placeholder in (("datasets", [BLANK]), ("base_model", BLANK)) if not config.get(key)
    }
    try:
        values = config_to_form({**config, **blanks})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return t("config.invalid_stored", lang) + "\n\n" + _bullets(lines)
    if "datasets" in blanks:
        values["datasets"], values["datasets.mixture"] = [], []
    if "base_model" in blanks:
        values.pop("base_model")
    return values


# -- wiring ------------------------------------------------------------------------------------------------


def wire(
    client: TunesmithClient,
    row: ConfigRow,
    fields: dict[str, Any],
    names: gr.State,
    run_name: gr.Textbox,
    collect: Callable[[Sequence[Any]], dict[str, Any]],
) -> tuple[list[Any], tuple[Callable[..., Any], list[Any], list[Any]]]:
    """Connect the row to the form (``fields``: form key -> widget); returns the two events that fill it, and
    "Start from…"'s (fn, inputs, outputs), which Runs' "Continue training" runs too."""
    keys = list(fields)
    outputs = [row.status, row.start_from, row.file, *fields.values(), names]

    def unchanged(message: str):
        return (message, gr.skip(), gr.skip(), *[gr.skip()] * len(keys), gr.skip())

    def apply(lang: str, config: dict[str, Any], origin: str, problems: list[str], current: Sequence[Any]):
        filled = fill_form(client, config, origin, problems, dict(zip(keys, current)), lang)
        if isinstance(filled, str):
            return unchanged(filled)
        values = filled.values
        ds_update, val_update, _, _ = dataset_choice_updates(filled.choices, values["datasets"], values["val_datasets"],
                                                             None)
        widgets = {**values, "datasets": ds_update, "val_datasets": val_update,
                   "datasets.mixture": table_value(values["datasets.mixture"], MIXTURE_HEADERS, lang),
                   "grpo.rewards": rewards_table(values["grpo.rewards"], lang)}
        # "Start from…" goes back to empty, so picking the same source again applies it again; a downloaded file
        # from before no longer matches the form.
        return (
            filled.message,
            gr.Dropdown(value=None),
            gr.File(visible=False, value=None),
            *[widgets.get(k, gr.skip()) for k in keys],
            filled.names,
        )

    def on_start_from(lang: str, choice: str | None, *current: Any):
        if not choice:
            return unchanged("")
        if choice == SUGGESTED:
            config, origin = suggested_config(client, collect(current), lang)
            if config is None:
                return unchanged(origin)
            return apply(lang, config, origin, [], current)
        config, origin = read_source(client, choice, lang)
        if config is None:
            return unchanged(origin)
        config, problems = lenient_config(config, lang)
        if config is None:
            return unchanged(t("config.invalid_stored", lang) + "\n\n" + _bullets(problems))
        return apply(lang, config, origin, problems, current)

    def on_load(lang: str, path: str | None, *current: Any):
        if not path:
            return unchanged("")
        config, problems, from_llamafactory = read_config_file(client, path, lang)
        if config is None:
            return unchanged(t("config.file_rejected", lang) + "\n\n" + _bullets(problems))
        origin = t("config.from_lf_file" if from_llamafactory else "config.from_file", lang, name=Path(path).name)
        return apply(lang, config, origin, problems, current)

    def on_download(lang: str, name: str | None, id_names: dict[str, str], *current: Any):
        config = collect(current)
        problems = validate_config(config)
        if problems:
            return (
                t("config.download_rejected", lang) + "\n\n" + _bullets(problems),
                gr.File(visible=False, value=None),
            )
        filename = config_file_name(name, config)
        path = scratch_dir() / filename
        path.write_text(config_yaml(config, filename, id_names), encoding="utf-8")
        message = t("config.downloaded", lang, filename=filename)
        return message, gr.File(value=str(path), visible=True)

    inputs = list(fields.values())
    started = row.start_from.input(localized(on_start_from), inputs=[row.start_from, *inputs], outputs=outputs)
    loaded = row.load.upload(localized(on_load), inputs=[row.load, *inputs], outputs=outputs)
    row.download.click(localized(on_download), inputs=[run_name, names, *inputs], outputs=[row.status, row.file])
    return [started, loaded], (localized(on_start_from), [row.start_from, *inputs], outputs)
