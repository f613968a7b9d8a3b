"""GET /api/v1/datasets/{id}/preview through the real engine subprocess on the tiny model: the JSON shape,
exactly the answers trained, the in-memory cache, 404s and a readable engine error."""

from __future__ import annotations

import json
import sys
import time

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.datasets.preview_service import PreviewService, build_preview_command
from backend.engine_process import EngineTimedOut
from backend.errors import EngineFailed
from tests.api.conftest import ALPACA_ROWS


@pytest.fixture
def api(settings):
    with TestClient(create_app(settings, start_runner=False)) as client:
        yield client


def _upload(api, rows) -> str:
    response = api.post("/api/v1/datasets", files={"file": ("numbers.json", json.dumps(rows), "application/json")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_preview_renders_samples_and_lengths_then_serves_the_cache(api, tiny_model_dir):
    dataset_id = _upload(api, ALPACA_ROWS)
    url = f"/api/v1/datasets/{dataset_id}/preview"
    params = {"model": "tiny-llama", "cutoff_len": 24, "samples": 2, "train_on_prompt": "false"}
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["cutoff_len"], body["tokenizer"]["chat_template"]) == ("tiny-llama", 24, "own")
    assert len(body["samples"]) == 2
    for row, sample in zip(ALPACA_ROWS, body["samples"]):
        trained = [s["text"] for s in sample["segments"] if s["trained"]]
        assert trained == [row["output"] + "<|im_end|>"]
        assert row["instruction"] in "".join(s["text"] for s in sample["segments"] if not s["trained"])
    lengths = body["lengths"]
    assert lengths["count"] == len(ALPACA_ROWS) == sum(b["count"] for b in lengths["histogram"])
    assert body["samples"][0]["truncated"] == (body["samples"][0]["num_tokens"] > 24)
    assert 0 <= lengths["truncated_share"] <= 1 and lengths["min"] <= lengths["p50"] <= lengths["p95"] <= lengths["max"]

    started = time.monotonic()
    again = api.get(url, params=params)
    assert again.status_code == 200 and time.monotonic() - started < 0.5
    assert again.json() == body
    by_path = api.get(url, params={**params, "model": str(tiny_model_dir)})  # same directory: same cache entry
    assert by_path.status_code == 200 and by_path.json()["samples"] == body["samples"]


def test_preview_with_a_named_chat_template(api):
    dataset_id = _upload(api, ALPACA_ROWS[:2])
    url = f"/api/v1/datasets/{dataset_id}/preview"
    params = {"model": "tiny-llama", "cutoff_len": 256, "samples": 1, "chat_template": "alpaca"}
    body = api.get(url, params=params).json()
    assert body["chat_template"] == "alpaca" and body["tokenizer"]["chat_template"] == "alpaca"
    segments = body["samples"][0]["segments"]
    prompt = "".join(s["text"] for s in segments if not s["trained"])
    assert prompt.startswith("### Instruction:\n" + ALPACA_ROWS[0]["instruction"]) and "### Response:\n" in prompt
    assert [s["text"] for s in segments if s["trained"]][0].startswith(ALPACA_ROWS[0]["output"])
    bad = api.get(url, params={**params, "chat_template": "vicuna"})
    assert bad.status_code == 422


def test_unknown_dataset_or_model_is_404(api):
    dataset_id = _upload(api, ALPACA_ROWS[:2])
    missing_ds = api.get("/api/v1/datasets/nope/preview", params={"model": "tiny-llama"})
    assert missing_ds.status_code == 404
    missing_model = api.get(f"/api/v1/datasets/{dataset_id}/preview", params={"model": "no-such-model"})
    assert missing_model.status_code == 404 and "no-such-model" in missing_model.json()["message"]
    assert api.get(f"/api/v1/datasets/{dataset_id}/preview", params={"model": "tiny-llama",
                                                                    "cutoff_len": 2}).status_code == 422


def test_engine_failure_is_a_readable_error_with_its_hint():
    # The service's error path, with a stand-in for the engine (a real failing engine costs ~10 s of imports).
    script = ("import sys; print('Traceback (most recent call last): ...', file=sys.stderr); "
              "print('error: OSError: no tokenizer in /m', file=sys.stderr); "
              "print('hint: see the log', file=sys.stderr); sys.exit(1)")
    with pytest.raises(EngineFailed) as caught:
        PreviewService()._run([sys.executable, "-c", script])
    assert str(caught.value) == "the preview failed: OSError: no tokenizer in /m"
    assert caught.value.hint == "see the log" and not isinstance(caught.value, EngineTimedOut)
    with pytest.raises(EngineTimedOut, match="did not finish within 1 s") as slow:
        PreviewService(timeout_s=1)._run([sys.executable, "-c", "import time; time.sleep(10)"])
    assert slow.value.status == 503
    argv = build_preview_command("/m", "/d.jsonl", 512, 2, True, python="py")
    assert argv == ["py", "-m", "backend.engine", "preview", "--model-dir", "/m", "--data", "/d.jsonl",
                    "--cutoff", "512", "--samples", "2", "--train-on-prompt"]
