"""POST /api/v1/configs/normalize: partial, older and flat configs as the full config this studio would run."""

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.config.schema import RunConfig

URL = "/api/v1/configs/normalize"


@pytest.fixture
def studio(settings):
    with TestClient(create_app(settings, start_runner=False)) as client:
        yield client


def dataset_id(client, name: str) -> str:
    return next(d["id"] for d in client.get("/api/v1/datasets").json()["data"] if d["name"] == name)


def test_an_empty_config_is_every_default_without_model_or_datasets(studio):
    body = studio.post(URL, json={}).json()
    assert "base_model" not in body["config"] and "datasets" not in body["config"]
    defaults = RunConfig(base_model="m", datasets=["d"]).model_dump(mode="json")
    assert body["config"] == {k: v for k, v in defaults.items() if k not in ("base_model", "datasets")}
    assert body["effective_learning_rate"] == 2e-4 and body["warnings"] == [] and body["missing_base_model"] is None


def test_flat_legacy_form_is_folded_and_names_become_ids(studio):
    identity = dataset_id(studio, "identity")
    body = studio.post(URL, json={
        "base_model": "tiny-llama", "datasets": ["preference_demo"], "val_datasets": [], "stage": "dpo",
        "method": "full", "pref_beta": 0.3, "pref_ftx": 1.0, "num_epochs": 1}).json()
    c = body["config"]
    assert c["base_model"] == "tiny-llama" and c["method"] == {"name": "full"}
    assert c["preference"]["beta"] == 0.3 and c["preference"]["sft_weight"] == 1.0
    assert c["datasets"] == [dataset_id(studio, "preference_demo")] != [identity]
    assert body["datasets"][0]["ref"] == "preference_demo" and body["datasets"][0]["format"] == "preference"
    assert body["effective_learning_rate"] == 1e-6 and body["warnings"] == []
    lora = studio.post(URL, json={"method": "lora", "lora_rank": 32, "lora_alpha": 64}).json()["config"]["method"]
    assert (lora["name"], lora["rank"], lora["alpha"], lora["dropout"]) == ("lora", 32, 64.0, 0.05)


def test_mixture_entries_keep_weights_and_unknown_datasets_leave_with_a_warning(studio):
    body = studio.post(URL, json={"datasets": [{"id": "identity", "weight": 2, "max_samples": 10},
                                               {"id": "gone", "weight": 1}, {"id": "chat_demo", "weight": 1}],
                                  "val_datasets": ["also-gone"]}).json()
    assert body["config"]["datasets"] == [
        {"id": dataset_id(studio, "identity"), "weight": 2.0, "max_samples": 10},
        {"id": dataset_id(studio, "chat_demo"), "weight": 1.0, "max_samples": None}]
    assert body["config"]["val_datasets"] == []
    messages = [(w["key"], w["msg"]) for w in body["warnings"]]
    assert [k for k, _ in messages] == ["datasets", "val_datasets"]
    assert "'gone' is not registered" in messages[0][1] and "'also-gone'" in messages[1][1]


def test_unknown_model_is_left_out_and_the_rest_kept(studio):
    body = studio.post(URL, json={"base_model": "Qwen/Qwen2.5-7B", "datasets": ["identity"]}).json()
    assert "base_model" not in body["config"] and body["config"]["datasets"] == [dataset_id(studio, "identity")]
    assert body["missing_base_model"] == "Qwen/Qwen2.5-7B"
    assert body["warnings"][0]["key"] == "base_model" and "Qwen/Qwen2.5-7B" in body["warnings"][0]["msg"]


def test_values_the_schema_rejects_are_left_out_one_warning_each(studio):
    body = studio.post(URL, json={"learning_rate": -1, "lora_rank": 0, "no_such_field": 1, "cutoff_len": 512,
                                  "distributed": {"zero_stage": 9, "num_processes": 2}}).json()
    c = body["config"]
    assert c["learning_rate"] is None and c["method"]["rank"] == 8 and c["cutoff_len"] == 512
    assert c["distributed"]["zero_stage"] == 2 and c["distributed"]["num_processes"] == 2
    assert sorted(w["key"] for w in body["warnings"]) == ["distributed.zero_stage", "learning_rate", "method.rank",
                                                          "no_such_field"]
    assert all("keeps its default" in w["msg"] for w in body["warnings"])


def test_a_rule_across_fields_is_a_422_naming_it(studio):
    reply = studio.post(URL, json={"lr_scheduler": "constant", "warmup_ratio": 0.1})
    assert reply.status_code == 422
    body = reply.json()
    assert "cannot be made valid by leaving fields out: lr_scheduler 'constant' has no warm-up" in body["message"]
    assert body["error_count"] == 1


def test_a_body_that_is_not_an_object_is_a_422(studio):
    assert studio.post(URL, json=["lora"]).status_code == 422
