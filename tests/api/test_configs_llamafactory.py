"""POST /api/v1/configs/from-llamafactory through the real app: LF's example-shaped YAMLs (LoRA SFT, DPO, KTO,
reward, QLoRA) import into valid run configs against a studio holding the model and LF's demo datasets."""

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api import security
from backend.api.main import create_app
from backend.config.schema import RunConfig
from backend.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llamafactory"
# LF's dataset_info.json entries for its demo sets, with a few hand-written rows in each file's layout
DATASET_INFO = {
    "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
    "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": True, "formatting": "sharegpt",
                    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
    "kto_en_demo": {"file_name": "kto_en_demo.json", "formatting": "sharegpt",
                    "columns": {"messages": "messages", "kto_tag": "label"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant"}},
}
ALPACA = [{"instruction": f"Spell {w}", "input": "", "output": "-".join(w)} for w in ("cat", "dog", "owl")]
DPO = [{"conversations": [{"from": "human", "value": f"Name a colour, {i}."}],
        "chosen": {"from": "gpt", "value": "Blue."}, "rejected": {"from": "gpt", "value": "Seven."}}
       for i in range(3)]
URL = "/api/v1/configs/from-llamafactory"
MODEL_ID = "HuggingFaceTB--SmolLM2-135M-Instruct"  # how a downloaded hub model is kept
LF_IGNORED = {"trust_remote_code", "overwrite_cache", "preprocessing_num_workers", "output_dir", "plot_loss",
              "overwrite_output_dir", "ddp_timeout", "per_device_eval_batch_size", "eval_strategy", "(defaults)"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_model_dir):
    """A studio with the tiny model under a hub-style folder name and LF's demo datasets imported."""
    root = tmp_path_factory.mktemp("lfstudio")
    models = root / "models"
    models.mkdir()
    os.symlink(tiny_model_dir, models / MODEL_ID)
    with pytest.MonkeyPatch.context() as patch, TestClient(
            create_app(_settings(patch, models, root / "home"), start_runner=False)) as client:
        files = {"dataset_info.json": json.dumps(DATASET_INFO), "alpaca_en_demo.json": json.dumps(ALPACA),
                 "dpo_en_demo.json": json.dumps(DPO),
                 "kto_en_demo.json": (FIXTURES / "kto_en_demo.json").read_bytes()}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        reply = client.post("/api/v1/datasets/import", files={"file": ("lf.zip", buf.getvalue(), "application/zip")})
        assert reply.status_code in (200, 201), reply.text
        yield client


def _settings(patch: pytest.MonkeyPatch, models: Path, home: Path) -> Settings:
    """Module-wide versions of tests/conftest.py's trust of TestClient's host name and the models root."""
    patch.setattr(security, "LOOPBACK_HOSTS", security.LOOPBACK_HOSTS | {"testserver"})
    patch.setenv("TUNESMITH_MODELS_DIR", str(models))
    return Settings.from_env(home)


def ids(client) -> dict[str, str]:
    return {d["name"]: d["id"] for d in client.get("/api/v1/datasets").json()["data"]}


def imported(client, fixture: str, *, as_json: bool = False) -> dict:
    text = (FIXTURES / fixture).read_text()
    reply = (client.post(URL, json={"yaml": text}) if as_json
             else client.post(URL, content=text, headers={"content-type": "text/yaml"}))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    RunConfig.model_validate(body["config"])  # valid as it stands: model and datasets resolved
    return body


def keys(body) -> set[str]:
    return {w["key"] for w in body["warnings"]}


def test_lora_sft_yaml_imports_with_model_and_datasets_resolved(studio):
    body = imported(studio, "train_lora_sft.yaml", as_json=True)
    c, names = body["config"], ids(studio)
    assert c["base_model"] == MODEL_ID and body["missing_base_model"] is None
    assert c["datasets"] == [names["identity"], names["alpaca_en_demo"]]
    assert [(d["ref"], d["name"]) for d in body["datasets"]] == [("identity", "identity"),
                                                                   ("alpaca_en_demo", "alpaca_en_demo")]
    assert c["method"] == {**c["method"], "name": "lora", "rank": 16, "alpha": 32.0, "dropout": 0.0,
                           "targets": ["all-linear"]}
    assert (c["stage"], c["chat_template"], c["cutoff_len"], c["max_samples"]) == ("sft", "chatml", 1024, 500)
    assert (c["learning_rate"], c["num_epochs"], c["per_device_batch_size"], c["gradient_accumulation_steps"]) == (
        1e-4, 2.0, 2, 4)
    assert (c["lr_scheduler"], c["warmup_ratio"], c["compute_type"], c["val_size"], c["eval_steps"]) == (
        "cosine", 0.1, "bf16", 0.1, 100)
    assert body["effective_learning_rate"] == 1e-4
    # warnings only for what the studio does not honour (report_to: none is one of those keys too)
    assert keys(body) == LF_IGNORED | {"report_to"}


def test_dpo_kto_and_qlora_yamls_import(studio):
    names = ids(studio)
    dpo = imported(studio, "train_lora_dpo.yaml")
    assert dpo["config"]["stage"] == "dpo" and dpo["config"]["datasets"] == [names["dpo_en_demo"]]
    assert dpo["config"]["preference"] == {**dpo["config"]["preference"], "beta": 0.2, "loss": "sigmoid",
                                           "sft_weight": 0.5}
    assert dpo["effective_learning_rate"] == 5e-6 and keys(dpo) == LF_IGNORED - {"per_device_eval_batch_size",
                                                                                  "eval_strategy"}
    kto = imported(studio, "train_lora_kto.yaml")
    assert kto["config"]["stage"] == "kto" and kto["config"]["datasets"] == [names["kto_en_demo"]]
    assert kto["config"]["preference"]["desirable_weight"] == 1.2
    qlora = imported(studio, "train_qlora_sft.yaml")
    method = qlora["config"]["method"]
    assert (method["name"], method["bits"], method["targets"]) == ("qlora", 4, ["q_proj", "v_proj"])
    assert qlora["config"]["distributed"]["backend"] == "deepspeed"
    assert "quantization_method" in keys(qlora)


def test_reward_yaml_imports_as_stage_rm(studio):
    body = imported(studio, "train_lora_reward.yaml")
    assert body["config"]["stage"] == "rm" and body["config"]["datasets"] == [ids(studio)["dpo_en_demo"]]
    assert body["config"]["method"]["rank"] == 8
    assert keys(body) == LF_IGNORED - {"per_device_eval_batch_size", "eval_strategy"}


def test_a_stage_the_studio_does_not_offer_is_refused_by_name(studio):
    reply = studio.post(URL, content=(FIXTURES / "train_lora_reward.yaml").read_text().replace("stage: rm", "stage: ppo"))
    assert reply.status_code == 422
    body = reply.json()
    assert "stage 'ppo' is not offered" in body["message"] and body["errors"][0]["loc"] == ["body", "yaml", "stage"]


def test_unknown_model_and_dataset_are_left_out_with_a_warning(studio):
    text = (FIXTURES / "train_lora_sft.yaml").read_text()
    text = text.replace("HuggingFaceTB/SmolLM2-135M-Instruct", "meta-llama/Meta-Llama-3-8B-Instruct")
    text = text.replace("identity,alpaca_en_demo", "identity,my_private_set")
    body = studio.post(URL, json={"yaml": text}).json()
    assert "base_model" not in body["config"]
    assert body["missing_base_model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert body["config"]["datasets"] == [ids(studio)["identity"]]
    messages = {w["key"]: w["msg"] for w in body["warnings"]}
    assert "'meta-llama/Meta-Llama-3-8B-Instruct' is not in this studio's model list" in messages["base_model"]
    assert "'my_private_set' is not registered" in messages["datasets"]


def test_out_of_range_values_are_left_out_one_warning_each(studio):
    body = studio.post(URL, content="stage: sft\nlora_rank: 0\ncutoff_len: 2\nlearning_rate: 3e-4\n").json()
    assert body["config"]["method"]["rank"] == 8 and body["config"]["cutoff_len"] == 1024
    assert body["config"]["learning_rate"] == 3e-4
    assert {"method.rank", "cutoff_len"} <= keys(body)


@pytest.mark.parametrize("body, kind, status, words", [
    ("stage: sft\nlora_rank: [8\nlearning_rate: 1\n", "text/yaml", 422, "not valid YAML at line 3"),
    ('{"yaml": 3}', "application/json", 422, '{"yaml": "<the YAML text>"}'),
    ("{not json", "application/json", 400, "not valid JSON"),
    ("stage: ppo\n", "text/plain", 422, "stage 'ppo' is not offered"),
    ("just a string", "text/yaml", 422, "holds a str"),
    (b"\xff\xfe", "text/yaml", 400, "not UTF-8"),
])
def test_bad_input_is_a_4xx_in_the_one_error_shape(studio, body, kind, status, words):
    reply = studio.post(URL, content=body, headers={"content-type": kind})
    assert reply.status_code == status, reply.text
    data = reply.json()
    assert words in data["message"] and data["error_count"] == len(data["errors"]) >= 1


def test_a_huge_body_is_413(studio):
    reply = studio.post(URL, content="# " + "x" * 400_000, headers={"content-type": "text/yaml"})
    assert reply.status_code == 413


def test_from_yaml_tells_a_tunesmith_config_from_a_llamafactory_one(studio):
    lf = studio.post("/api/v1/configs/from-yaml", content=(FIXTURES / "train_lora_sft.yaml").read_text()).json()
    assert lf["format"] == "llamafactory" and lf["config"]["method"]["rank"] == 16
    assert lf["config"]["base_model"] == MODEL_ID
    preset = Path(__file__).resolve().parents[2] / "backend" / "config" / "presets" / "identity_lora.yaml"
    ours = studio.post("/api/v1/configs/from-yaml", json={"yaml": preset.read_text()}).json()
    assert ours["format"] == "tunesmith" and ours["config"]["datasets"] == [ids(studio)["identity"]]
    # the preset's bundled model is not in this test studio: left out, named
    assert [w["key"] for w in ours["warnings"]] == ["base_model"]
    flat = studio.post("/api/v1/configs/from-yaml", content="datasets: [identity]\nlora_rank: 4\n").json()
    assert flat["format"] == "tunesmith" and flat["config"]["method"]["rank"] == 4


def test_yaml_aliases_are_refused_before_they_can_expand(studio):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\ndataset: *b\n"
    for url in ("/api/v1/configs/from-yaml", URL):
        reply = studio.post(url, content=bomb)
        assert reply.status_code == 422 and "alias (*name) at line 2" in reply.json()["message"]


def test_orpo_and_simpo_dpo_yamls_import_as_the_reference_free_losses(studio):
    text = (FIXTURES / "train_lora_dpo.yaml").read_text().replace("pref_ftx: 0.5\n", "")
    orpo = studio.post(URL, content=text.replace("pref_loss: sigmoid", "pref_loss: orpo")).json()
    assert orpo["config"]["preference"]["loss"] == "orpo" and orpo["config"]["preference"]["orpo_lambda"] == 0.2
    simpo = studio.post(URL, content=text.replace("pref_loss: sigmoid", "pref_loss: simpo")).json()
    assert (simpo["config"]["preference"]["loss"], simpo["config"]["preference"]["beta"]) == ("simpo", 0.2)
    for body in (orpo, simpo):
        RunConfig.model_validate(body["config"])
        assert not {"preference", "preference.beta"} & keys(body)
