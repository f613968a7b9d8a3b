"""Reusing a configuration on the Train page: run config -> form values (the inverse of build_config), presets and
earlier runs as starting points, YAML out (runs with `tunesmith train`) and back in."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio")

from app.form import build_config, config_to_form, mixture_rows, validate_config  # noqa: E402
from app.pages.train_config import (  # noqa: E402
    PRESET,
    RUN,
    SUGGESTED,
    Filled,
    fill_form,
    fit_to_studio,
    lenient_config,
    read_source,
    start_choices,
    suggested_config,
)
from app.pages.train_config_file import config_file_name, config_yaml, parse_config_file  # noqa: E402
from app.pages.train_suggest import in_language, model_hint  # noqa: E402
from backend.config.schema import RunConfig  # noqa: E402
from backend.fsio import read_yaml  # noqa: E402

PRESETS = sorted((Path(__file__).resolve().parents[2] / "backend" / "config" / "presets").glob("*.yaml"))
NAMES = {"ds_a": "alpaca", "ds_b": "chat", "ds_v": "held-out"}

FORMS = {
    "lora-mixture": {
        "base_model": "tiny-llama",
        "datasets": ["ds_a", "ds_b"],
        "method": "lora",
        "method.rank": 16,
        "method.alpha": 32,
        "method.dropout": 0.1,
        "method.targets": ["q_proj", "v_proj"],
        "method.use_dora": True,
        "method.loraplus_lr_ratio": "16",
        "method.extra_trainable_modules": ["lm_head"],
        "datasets.mixture": [["ds_a", "alpaca", 0.7, 500], ["ds_b", "chat", 0.3, None]],
        "mixture_size": "800",
        "val_datasets": ["ds_v"],
        "learning_rate": "0.0003",
        "num_epochs": 2,
        "max_steps": "",
        "seed": 7,
        "save_steps": "0",
        "neftune_noise_alpha": "5",
        "lr_scheduler": "linear",
        "warmup_ratio": 0.1,
    },
    "qlora": {
        "base_model": "/models/llama",
        "datasets": ["ds_a"],
        "method": "qlora",
        "method.rank": 8,
        "method.bits": "8",
        "method.quant_type": "fp4",
        "method.double_quant": False,
        "method.targets": ["all-linear"],
        "compute_type": "bf16",
        "optimizer": "paged_adamw_8bit",
        "gradient_checkpointing": "on",
        "max_steps": "50",
        "max_samples": "1000",
        "save_total_limit": "0",
        "batch_tokens": "4096",
        "val_size": 0.05,
        "eval_steps": "10",
    },
    "full-deepspeed": {
        "base_model": "tiny-llama",
        "datasets": ["ds_b"],
        "method": "full",
        "method.rank": 64,  # lora leftovers
        "compute_type": "bf16",
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 8,
        "cutoff_len": 2048,
        "distributed.backend": "deepspeed",
        "distributed.zero_stage": 3,
        "distributed.offload_optimizer": True,
        "distributed.offload_params": True,
        "distributed.gpus": "0, 1",
        "distributed.num_processes": "2",
        "distributed.num_machines": 2,
        "distributed.machine_rank": 1,
        "distributed.main_process_ip": "10.0.0.1",
        "distributed.main_process_port": "29600",
        "attn_implementation": "sdpa",
        "use_liger_kernel": "off",
    },
    "dpo": {
        "base_model": "tiny-llama",
        "datasets": ["ds_a"],
        "method": "lora",
        "stage": "dpo",
        "preference.beta": 0.25,
        "preference.loss": "ipo",
        "preference.sft_weight": 0.5,
        "preference.desirable_weight": 1.0,
        "preference.undesirable_weight": 1.0,
        "per_device_batch_size": 2,
        "packing": False,
        "train_on_prompt": True,
    },
}


@pytest.fixture(scope="module")
def train_page():
    import gradio as gr

    from app.client import TunesmithClient
    from app.pages import train

    with gr.Blocks():
        return train.build(TunesmithClient("http://127.0.0.1:9/api/v1"))  # port 9: nothing is fetched


def full_form(page, overrides: dict) -> dict:
    """Every widget's value as the page starts, with ``overrides`` typed in (the mixture table follows the
    Datasets selection, as on the page)."""
    values = {key: widget.value for key, widget in page.fields.items()}
    values["datasets.mixture"] = mixture_rows(overrides["datasets"], NAMES, None)
    values["grpo.rewards"] = []  # the rewards table starts empty (a gr.Dataframe's start value is its payload)
    return {**values, **overrides}


@pytest.mark.parametrize("name", FORMS)
def test_form_config_form_config_is_identical(train_page, name):
    form = full_form(train_page, FORMS[name])
    config = build_config(form)
    assert validate_config(config) == []
    values = config_to_form(config, NAMES)
    assert set(values) == set(train_page.fields)  # every widget gets a value, and only widgets do
    again = build_config(values)
    assert again == config
    assert config_to_form(again, NAMES) == values
    changed = {k for k in form if form[k] != values[k]}
    assert changed <= {"method.rank", "base_model"} or name != "full-deepspeed", changed  # lora leftovers reset


def test_the_round_trip_keeps_the_nested_settings():
    lora = build_config(FORMS["lora-mixture"])
    assert lora["datasets"] == [{"id": "ds_a", "weight": 0.7, "max_samples": 500}, {"id": "ds_b", "weight": 0.3}]
    assert lora["save_steps"] is None  # "0" = only the final output, not the default 100
    values = config_to_form(lora, NAMES)
    assert values["datasets.mixture"] == [["ds_a", "alpaca", 0.7, 500], ["ds_b", "chat", 0.3, None]]
    assert (values["save_steps"], values["method.rank"], values["method.loraplus_lr_ratio"]) == ("0", 16, "16.0")
    assert values["method.bits"] == 4 and values["method.trainable_layers"] == 2  # other methods: defaults
    full = build_config(FORMS["full-deepspeed"])
    assert full["method"] == {"name": "full"}
    assert full["distributed"] == {
        "backend": "deepspeed",
        "zero_stage": 3,
        "offload_optimizer": True,
        "offload_params": True,
        "num_processes": 2,
        "gpus": [0, 1],
        "num_machines": 2,
        "machine_rank": 1,
        "main_process_ip": "10.0.0.1",
        "main_process_port": 29600,
    }
    assert config_to_form(full)["distributed.gpus"] == "0, 1"
    dpo = build_config(FORMS["dpo"])
    assert dpo["preference"] == {
        "beta": 0.25,
        "loss": "ipo",
        "sft_weight": 0.5,
        "desirable_weight": 1.0,
        "undesirable_weight": 1.0,
    }
    assert "distributed" not in dpo and "distributed" not in lora  # all defaults: left out


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_a_preset_or_a_stored_config_fills_the_form_with_the_same_run(path):
    preset = read_yaml(path)  # flat lora_rank / nested preference keys
    run = RunConfig.model_validate(preset)
    assert RunConfig.model_validate(build_config(config_to_form(preset))) == run
    stored = run.model_dump(mode="json")  # what GET /jobs/{id} returns as "config"
    assert RunConfig.model_validate(build_config(config_to_form(stored))) == run


def test_the_page_starts_with_the_schema_defaults(train_page):
    minimal = {"base_model": "m", "datasets": ["ds_a"]}
    assert build_config(full_form(train_page, minimal)) == build_config(config_to_form(minimal))
    assert train_page.fields["distributed.backend"].elem_id == "train-dist-backend"
    assert train_page.fields["save_steps"].value == "100"  # a default other than "none" is shown


def test_a_stored_config_keeps_its_valid_values_and_names_the_rest():
    stored = RunConfig.model_validate({"base_model": "m", "datasets": ["ds_a", "ds_b"], "lora_rank": 4}).model_dump()
    stored["galore_rank"] = 8  # a field this version does not know
    stored["method"]["rank"] = 0  # out of bounds
    stored["method"]["lora_magic"] = True
    stored["distributed"]["zero_stage"] = 5
    config, problems = lenient_config(stored, "en")
    assert config is not None and "galore_rank" not in config
    assert config["method"]["alpha"] == 16.0 and "rank" not in config["method"]
    joined = "\n".join(problems)
    for where in ("galore_rank:", "method.rank:", "method.lora_magic:", "distributed.zero_stage:"):
        assert where in joined, problems
    assert "not applied" in problems[0]
    assert stored["method"]["rank"] == 0  # the input is left alone
    broken = {**stored, "lr_scheduler": "constant", "warmup_ratio": 0.1}  # a whole-config rule
    config, problems = lenient_config(broken, "en")
    assert config is None and any("constant" in p for p in problems)


def test_unknown_datasets_and_models_are_left_out_and_named():
    values = config_to_form(
        {
            "base_model": "gone-model",
            "datasets": [{"id": "ds_gone", "weight": 1}, {"id": "alpaca", "weight": 2}],
            "val_datasets": ["ds_v_gone"],
        }
    )
    datasets = [{"id": "ds_a", "name": "alpaca"}, {"id": "ds_b", "name": "chat"}]
    fitted, problems = fit_to_studio(values, ["tiny-llama"], datasets, "en")
    assert fitted["datasets"] == ["ds_a"]  # found by its name
    assert fitted["datasets.mixture"] == [["ds_a", "alpaca", 2.0, None]]
    assert fitted["val_datasets"] == [] and "base_model" not in fitted
    assert len(problems) == 3
    assert "dataset 'ds_gone' is not registered" in problems[0] and "left out of Datasets" in problems[0]
    assert "'ds_v_gone'" in problems[1] and "Validation datasets" in problems[1]
    assert "base model 'gone-model'" in problems[2] and "keeps its current choice" in problems[2]
    path_model, problems = fit_to_studio({**values, "base_model": "/data/llama"}, [], datasets, "en")
    assert path_model["base_model"] == "/data/llama"  # a path: the API checks it


def test_downloaded_yaml_runs_with_tunesmith_train(train_page, tmp_path):
    from backend.cli import build_parser

    config = build_config(full_form(train_page, FORMS["lora-mixture"]))
    name = config_file_name("my run/1", config)
    assert name == "my-run-1.yaml" and config_file_name("", config) == "tiny-llama-lora.yaml"
    assert config_file_name(None, build_config(FORMS["dpo"])) == "tiny-llama-lora-dpo.yaml"
    path = tmp_path / name
    path.write_text(config_yaml(config, name, NAMES))
    text = path.read_text().splitlines()
    assert (
        text[0] == f"# tunesmith train {name}" and text[2] == "# datasets: ds_a = alpaca, ds_b = chat, ds_v = held-out"
    )
    assert read_yaml(path) == config  # exactly what the form sends
    args = build_parser().parse_args(["train", str(path)])
    assert args.func.__name__ == "cmd_train"
    assert RunConfig.model_validate(read_yaml(args.config)) == RunConfig.model_validate(config)  # what cmd_train reads
    loaded, problems = parse_config_file(path)
    assert problems == [] and loaded == config


@pytest.mark.parametrize(
    "text,expected",
    [
        ("base_model: m\ndatasets: [a\n", "bad.yaml is not valid YAML at line 3, column 1"),
        ("- base_model\n- m\n", "bad.yaml holds list, not run-config fields"),
        ("", "bad.yaml holds nothing"),
        (
            "base_model: m\ndatasets: [a]\nlora_rank: 0\n",
            "bad.yaml: method.lora.rank: Input should be greater than or equal to 1",
        ),
        ("base_model: m\ndatasets: [a]\nepochs: 3\n", "bad.yaml: epochs: Extra inputs are not permitted"),
    ],
)
def test_a_bad_config_file_says_what_and_where(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    config, problems = parse_config_file(path)
    assert config is None
    assert any(p.startswith(expected) for p in problems), problems


def test_start_choices_list_presets_then_runs_newest_first():
    presets = [{"name": "identity_lora", "description": "LoRA on identity."}, {"name": "bare", "description": ""}]
    jobs = [
        {"id": "job_1", "name": "old", "state": "succeeded", "created_at": "2025-01-01T00:00:00"},
        {"id": "job_2", "name": "new", "state": "failed", "created_at": "2025-02-01T00:00:00"},
    ]
    choices = start_choices(presets, jobs, "en")
    assert [v for _, v in choices] == [
        SUGGESTED,
        PRESET + "identity_lora",
        PRESET + "bare",
        RUN + "job_2",
        RUN + "job_1",
    ]
    assert choices[1][0] == "Preset · identity_lora — LoRA on identity." and choices[2][0] == "Preset · bare"
    assert choices[3][0].startswith("Run · new · job_2 · failed")


def test_start_from_a_preset_and_a_run_through_the_api(client, tmp_path):
    from tests.tiny_model import build_tiny_model

    presets = {p["name"]: p for p in client.list_presets()}
    config, origin = read_source(client, PRESET + "preference_dpo_lora", "en")
    assert config == presets["preference_dpo_lora"]["config"] and origin == "preset **preference_dpo_lora**"
    current = config_to_form({"base_model": "kept", "datasets": ["x"]})
    filled = fill_form(client, config, origin, [], current, "en")
    assert isinstance(filled, Filled)
    by_name = {n: i for i, n in filled.names.items()}
    assert filled.values["datasets"] == [by_name["preference_demo"]] and filled.values["stage"] == "dpo"
    assert "base_model" not in filled.values  # SmolLM2 is not in this studio's (empty) model list
    assert "base model 'SmolLM2-135M-Instruct'" in filled.message and "would refuse" in filled.message

    model = str(build_tiny_model(tmp_path / "tiny-llama"))
    job = client.create_job(
        {
            "base_model": model,
            "datasets": [{"id": by_name["identity"], "weight": 1}],
            "method": "lora",
            "lora_rank": 4,
            "max_steps": 3,
            "save_steps": None,
        },
        name="to-clone",
    )
    config, origin = read_source(client, RUN + job["id"], "en")
    assert origin == f"run **to-clone** (`{job['id']}`)"
    filled = fill_form(client, config, origin, [], current, "en")
    assert filled.message.startswith("✓ Filled the form from run **to-clone**")
    assert "✓ The API accepts this config" in filled.message
    values = filled.values
    assert (values["base_model"], values["method.rank"], values["max_steps"], values["save_steps"]) == (
        model,
        4,
        "3",
        "0",
    )
    assert values["datasets.mixture"] == [[by_name["identity"], "identity", 1.0, None]]
    clone = build_config({**current, **values})
    assert RunConfig.model_validate(clone) == RunConfig.model_validate(config)
    gone = {**config, "datasets": ["ds_deleted", by_name["identity"]]}
    filled = fill_form(client, gone, origin, [], current, "en")
    assert filled.values["datasets"] == [by_name["identity"]]
    assert filled.message.startswith(f"⚠ Filled the form from {origin}, except 1 value that could not be applied")
    assert "'ds_deleted' is not registered" in filled.message
    missing, message = read_source(client, RUN + "job_nope", "en")
    assert missing is None and "no job with id 'job_nope'" in message


def test_suggested_settings_for_the_chosen_model_through_the_api(client, tmp_path):
    from tests.tiny_model import build_tiny_model

    model = str(build_tiny_model(tmp_path / "tiny-llama"))
    current = build_config(config_to_form({"base_model": model, "datasets": ["x"], "method": "full", "max_steps": 7}))
    config, origin = suggested_config(client, current, "en")  # the form's config (as Start sends it) + the suggestion
    run = RunConfig.model_validate(config)
    assert run.method.name == "lora" and run.cutoff_len == 512  # the tiny model's whole context (under 1024)
    assert run.max_steps == 7 and run.datasets == ["x"]  # what the suggestion does not cover is kept
    assert "the settings suggested for" in origin and "No GPU here" in origin
    hint = model_hint(client, model, "en")
    assert hint.startswith("ℹ ") and "LoRA r 8" in hint and "Suggested settings" in hint
    assert model_hint(client, "/no/such/model", "en") == ""
    missing, message = suggested_config(client, {**current, "base_model": None}, "en")
    assert missing is None and "Pick a base model first" in message
    zh_hint = model_hint(client, model, "zh")  # was "ℹ 135M parameters (30 layers, hidden size 576). … CPU (2 cores)"
    assert "参数（" in zh_hint and "核）" in zh_hint and "parameters" not in zh_hint and "cores" not in zh_hint
    _, zh_origin = suggested_config(client, current, "zh")
    assert "本机没有 GPU" in zh_origin and "No GPU here" not in zh_origin


def test_suggestion_notes_of_known_shapes_are_said_in_the_ui_language():
    assert in_language("135M parameters (30 layers, hidden size 576).", "zh") == "135M 参数（30 层，隐藏层维度 576）。"
    assert in_language("1 × NVIDIA H100 (79 GiB free)", "zh") == "1 × NVIDIA H100（可用 79 GiB）"
    assert in_language("CPU (2 cores)", "en") == "CPU (2 cores)"
    assert in_language("A note of another shape.", "zh") == "A note of another shape."


LLAMAFACTORY_LORA_SFT = """\
### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
### dataset
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
### output
output_dir: saves/llama3-8b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
"""


def test_load_config_takes_a_llamafactory_training_yaml(client, tmp_path):
    """Issue 12 group 3: LLaMA-Factory's own llama3_lora_sft.yaml fills the form (was: 19 'Extra inputs are not
    permitted'); what the studio cannot honour is named, the unknown hub model leaves Base model as it is."""
    from app.pages.train_config_file import read_config_file

    path = tmp_path / "llama3_lora_sft.yaml"
    path.write_text(LLAMAFACTORY_LORA_SFT, encoding="utf-8")
    config, notes, from_llamafactory = read_config_file(client, path, "en")
    assert from_llamafactory and config is not None
    identity = next(d["id"] for d in client.list_datasets() if d.get("name") == "identity")
    current = config_to_form({"base_model": "keep-me", "datasets": [identity]})
    filled = fill_form(client, config, "**llama3_lora_sft.yaml**", notes, current, "en")
    assert isinstance(filled, Filled), filled
    values = filled.values
    assert "base_model" not in values  # the form keeps its own model
    assert values["datasets"] == [identity] and "alpaca_en_demo" in filled.message
    assert (values["method"], values["method.rank"], values["cutoff_len"]) == ("lora", 8, 2048)
    assert (values["gradient_accumulation_steps"], values["lr_scheduler"]) == (8, "cosine")
    assert float(values["learning_rate"]) == 1e-4 and values["chat_template"] == "llama3"
    assert "Extra inputs" not in filled.message


def test_suggested_settings_before_any_dataset_fill_the_form(client, tmp_path):
    """Issue 12 group 1: ✨ Suggested settings with no dataset picked used to raise a ValidationError out of the
    handler (every field an 'Error' badge); now the settings apply and Datasets stays empty."""
    from tests.tiny_model import build_tiny_model

    model = str(build_tiny_model(tmp_path / "tiny-llama"))
    current = config_to_form({"base_model": model, "datasets": ["x"]})
    current.update({"datasets": [], "datasets.mixture": []})
    config, origin = suggested_config(client, build_config(current), "en")
    assert config is not None and not config.get("datasets")
    filled = fill_form(client, config, origin, [], current, "en")
    assert isinstance(filled, Filled), filled
    assert filled.values["datasets"] == [] and filled.values["method.rank"] == 8
    assert filled.message.startswith("✓ Filled the form from the settings suggested for")
    zh = fill_form(client, config, origin, [], current, "zh")
    assert isinstance(zh, Filled) and "已用" in zh.message
