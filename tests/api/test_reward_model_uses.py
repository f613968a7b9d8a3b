"""A finished stage-rm run (a reward model) through the API: it cannot be chatted with (it scores, it does not
generate: a 422 saying what it is for, before any worker starts), while its adapter download and its safetensors
merge work, and a grpo run may name it as a reward_model reward. A real tiny rm run."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import wait_for_state

RUN = {"base_model": "tiny-llama", "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "cutoff_len": 64,
       "save_steps": None, "seed": 0, "compute_type": "fp32", "method": {"name": "lora", "rank": 4, "alpha": 8}}


def builtin(client, name: str) -> str:
    return next(d["id"] for d in client.get("/api/v1/datasets").json()["data"] if d["name"] == name)


def test_reward_model_run_is_not_chatted_with_but_downloads_merges_and_rewards(client):
    pairs = builtin(client, "preference_demo")
    rm = client.post("/api/v1/jobs", json={**RUN, "datasets": [pairs], "stage": "rm", "max_steps": 2})
    assert rm.status_code == 201, rm.text
    rm = wait_for_state(client, rm.json()["id"], ("succeeded", "failed", "cancelled"))
    assert rm["state"] == "succeeded", rm

    chat = {"job_id": rm["id"], "messages": [{"role": "user", "content": "Hi"}], "max_new_tokens": 4}
    for route in ("/api/v1/chat", "/api/v1/chat/stream"):
        resp = client.post(route, json=chat)
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["errors"][0]["loc"] == ["body", "job_id"]
        assert f"run {rm['id']} is a reward model (stage 'rm')" in body["message"]
        assert "cannot be chatted with" in body["message"] and '"name": "reward_model"' in body["hint"]
    resp = client.post("/v1/chat/completions", json={"model": rm["id"], "messages": chat["messages"]})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["param"] == "model" and "is a reward model" in resp.json()["error"]["message"]
    assert rm["id"] not in [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert client.app.state.chat.worker_pid is None  # refused before any model was loaded
    resp = client.post(f"/api/v1/jobs/{rm['id']}/export", json={"format": "gguf", "quantization": "f16"})
    assert resp.status_code == 422, resp.text
    assert "cannot be exported to GGUF" in resp.json()["message"]

    adapter = client.get(f"/api/v1/jobs/{rm['id']}/adapter")
    assert adapter.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(adapter.content)).namelist()
    assert any(name.endswith("adapter_model.safetensors") for name in names), names
    merged = client.post(f"/api/v1/jobs/{rm['id']}/merge")
    assert merged.status_code == 200, merged.text
    config = json.loads((Path(merged.json()["path"]) / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"], config  # the score head survived

    grpo = {**RUN, "datasets": [builtin(client, "identity")], "stage": "grpo",
            "grpo": {"num_generations": 2, "max_completion_length": 8,
                     "rewards": [{"name": "reward_model", "run": rm["id"]}]}}
    resp = client.post("/api/v1/jobs/preview", json=grpo)
    assert resp.status_code == 200, resp.text

    # Evaluate scores it on pairs, side by side with the model it started from; chat data is refused up front
    resp = client.post(f"/api/v1/jobs/{rm['id']}/evaluate", json={"dataset": builtin(client, "identity")})
    assert resp.status_code == 422 and "reward model" in resp.json()["message"], resp.text
    resp = client.post(f"/api/v1/jobs/{rm['id']}/evaluate", json={"dataset": pairs, "with_base": True})
    assert resp.status_code == 201, resp.text
    scored = resp.json()
    assert scored["pairs"] == scored["samples"] == scored["in_training"] == scored["base"]["pairs"] > 0
    assert 0 <= scored["pairwise_accuracy"] <= 1 and 0 <= scored["base"]["pairwise_accuracy"] <= 1
    assert scored["delta"]["mean_margin"] == pytest.approx(scored["mean_margin"] - scored["base"]["mean_margin"])
