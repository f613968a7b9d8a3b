"""Stages dpo and kto at submit time: which datasets they accept (422 saying what is wrong and what to do), the
preference settings (also LLaMA-Factory's flat names) and the combinations refused; the Train form's values reach
the API."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import ALPACA_ROWS

KTO_ROWS = [{"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": f"{i}."}],
             "label": i % 2 == 0} for i in range(6)]


def upload(client, rows, name: str) -> str:
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    resp = client.post("/api/v1/datasets", files={"file": (f"{name}.jsonl", data, "application/json")},
                       data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def builtin(client, name: str) -> str:
    return next(d["id"] for d in client.get("/api/v1/datasets").json()["data"] if d["name"] == name)


def preview(client, **fields):
    return client.post("/api/v1/jobs/preview", json={"base_model": "tiny-llama", **fields})


def problem(resp) -> tuple[list, str]:
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    return error["loc"], error["msg"]


def test_dpo_on_messages_data_is_422_saying_it_needs_pairs(client, settings):
    chat = upload(client, ALPACA_ROWS, "numbers")
    resp = client.post("/api/v1/jobs", json={"base_model": "tiny-llama", "datasets": [chat], "stage": "dpo"})
    loc, msg = problem(resp)
    assert loc == ["body", "datasets", 0]
    assert f"dataset 'numbers' ({chat}) is alpaca data; stage 'dpo' needs chosen/rejected pairs" in msg
    assert "preference_demo" in msg
    assert client.get("/api/v1/jobs").json()["count"] == 0 and not any(settings.runs_dir.iterdir())


def test_dpo_on_the_builtin_preference_demo_resolves(client, settings):
    pairs = builtin(client, "preference_demo")
    resp = preview(client, datasets=[pairs], stage="dpo", preference={"loss": "ipo", "beta": 0.3})
    assert resp.status_code == 200, resp.text
    assert "backend.engine" in resp.json()["argv"]
    # a validation dataset must be pairs too
    chat = upload(client, ALPACA_ROWS, "numbers")
    loc, msg = problem(preview(client, datasets=[pairs], val_datasets=[chat], stage="dpo"))
    assert loc == ["body", "val_datasets", 0] and "needs chosen/rejected pairs" in msg


def test_kto_takes_kto_and_preference_data_but_not_chat(client):
    kto, pairs = upload(client, KTO_ROWS, "labelled"), builtin(client, "preference_demo")
    assert preview(client, datasets=[kto, pairs], stage="kto").status_code == 200
    loc, msg = problem(preview(client, datasets=[kto, builtin(client, "identity")], stage="kto"))
    assert loc == ["body", "datasets", 1] and "is alpaca data; stage 'kto' needs replies labelled" in msg
    loc, msg = problem(preview(client, datasets=[kto], stage="dpo"))
    assert "is kto data; stage 'dpo' needs chosen/rejected pairs" in msg


@pytest.mark.parametrize("fields,needle", [
    ({"stage": "kto", "per_device_batch_size": 1}, "per_device_batch_size must be at least 2"),
    ({"stage": "dpo", "batch_tokens": 512}, "stage 'dpo' pads its batches"),
    ({"stage": "dpo", "lora_init": "pissa"}, "adapter switched off as its reference model"),
    ({"stage": "kto", "preference": {"sft_weight": 1.0}}, "preference.sft_weight applies to stage 'dpo' only"),
    ({"stage": "dpo", "kto_chosen_weight": 2.0}, "preference.desirable_weight applies to stage 'kto' only"),
    ({"stage": "dpo", "preference": {"loss": "orpo", "beta": 0.2}}, "its weight is preference.orpo_lambda"),
    ({"stage": "dpo", "preference": {"simpo_gamma": 0.8}}, "applies to the simpo loss only"),
])
def test_refused_preference_combinations(client, fields, needle):
    resp = preview(client, datasets=[builtin(client, "preference_demo")], **fields)
    assert resp.status_code == 422 and needle in resp.text, resp.text


def test_llamafactory_names_and_defaults_land_in_the_stored_config(client):
    from backend.config.schema import RunConfig

    config = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "stage": "dpo", "pref_beta": 0.25,
                                       "pref_loss": "hinge", "pref_ftx": 0.5})
    assert (config.preference.beta, config.preference.loss, config.preference.sft_weight) == (0.25, "hinge", 0.5)
    assert config.packing is False and config.effective_learning_rate == 5e-6  # padded; LLaMA-Factory's DPO lr
    full = RunConfig.model_validate({"base_model": "m", "datasets": ["d"], "stage": "kto", "method": "full"})
    assert full.effective_learning_rate == 1e-6 and full.preference.desirable_weight == 1.0


def test_train_form_sends_preference_settings_only_for_dpo_and_kto(client):
    pytest.importorskip("gradio")
    from app.form import build_config, validate_config

    values = {"base_model": "tiny-llama", "datasets": [builtin(client, "preference_demo")], "method": "lora",
              "preference.beta": "0.2", "preference.loss": "sigmoid", "preference.sft_weight": 1,
              "preference.desirable_weight": 1.0, "preference.undesirable_weight": 1.0, "packing": True}
    dpo = build_config({**values, "stage": "dpo"})
    assert dpo["preference"] == {"beta": 0.2, "loss": "sigmoid", "sft_weight": 1.0, "desirable_weight": 1.0,
                                 "undesirable_weight": 1.0}
    assert validate_config(dpo) == [] and preview(client, **dpo).status_code == 200
    assert "preference" not in build_config({**values, "stage": "sft"})


def test_runs_page_shows_the_latest_reward_margin_and_accuracy():
    pytest.importorskip("gradio")
    from app.pages.runs import status_html
    from app.pages.runs_charts import run_charts

    rows = [{"step": 1, "loss": 0.69, "rewards/margins": 0.0, "rewards/accuracies": 0.0},
            {"step": 2, "loss": 0.52, "rewards/margins": 0.4213, "rewards/accuracies": 0.75},
            {"step": 2, "eval_loss": 0.5, "eval_rewards/margins": 0.3}]
    text = status_html({"id": "job_x", "state": "running", "step": 2, "total_steps": 4}, rows)
    assert "reward margin <b>0.421</b>" in text and "reward accuracy <b>0.75</b>" in text
    loss = run_charts(rows)[0]  # the loss chart plots as for sft
    assert [value for series in loss.series for _, value in series.points] == [0.69, 0.52, 0.5]
    assert "reward" not in status_html({"id": "job_y", "state": "running"}, [{"step": 1, "loss": 2.0}])
    rm = status_html({"id": "job_rm", "state": "running"}, [{"step": 1, "loss": 0.4, "accuracy": 1.0, "margin": 2.5}])
    assert "reward margin <b>2.5</b>" in rm and "reward accuracy <b>1</b>" in rm
    grpo = status_html({"id": "job_g", "state": "running"}, [{"step": 1, "loss": 0.0, "reward": 0.375}])
    assert "mean reward <b>0.375</b>" in grpo


def test_rm_takes_preference_pairs_only_and_no_preference_settings(client):
    pairs, kto = builtin(client, "preference_demo"), upload(client, KTO_ROWS, "labelled")
    resp = preview(client, datasets=[pairs], stage="rm")
    assert resp.status_code == 200, resp.text
    loc, msg = problem(preview(client, datasets=[pairs, kto], stage="rm"))
    assert loc == ["body", "datasets", 1] and "is kto data; stage 'rm' trains a reward model on chosen/rejected" in msg
    chat = upload(client, ALPACA_ROWS, "numbers")
    loc, msg = problem(preview(client, datasets=[pairs], val_datasets=[chat], stage="rm"))
    assert loc == ["body", "val_datasets", 0] and "preference_demo" in msg
    resp = preview(client, datasets=[pairs], stage="rm", preference={"beta": 0.2})
    assert resp.status_code == 422 and "stage 'rm' has its own loss" in resp.text


def test_grpo_takes_chat_prompts_but_not_raw_text(client):
    chat = upload(client, ALPACA_ROWS, "numbers")
    grpo = {"per_device_batch_size": 4, "gradient_accumulation_steps": 1,
            "grpo": {"num_generations": 4, "rewards": [{"name": "exact_match"}]}}
    assert preview(client, datasets=[chat], stage="grpo", **grpo).status_code == 200
    text = client.post("/api/v1/datasets", files={"file": ("doc.txt", b"Some plain text.\n", "text/plain")},
                       data={"name": "doc"})
    assert text.status_code == 201, text.text
    loc, msg = problem(preview(client, datasets=[chat, text.json()["id"]], stage="grpo", **grpo))
    assert loc == ["body", "datasets", 1] and "stage 'grpo' samples replies to the prompts of a chat dataset" in msg
