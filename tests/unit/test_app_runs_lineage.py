"""The Runs page's Lineage section and Continue training: what they show and set, against a transport that
answers as the API does."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("gradio")

from app.client import TunesmithClient  # noqa: E402
from app.pages.runs import action_updates  # noqa: E402
from app.pages.runs_continue import continue_note, start_from_choice  # noqa: E402
from app.pages.runs_lineage import lineage_html, load  # noqa: E402

REPORT = {"job_id": "job_c", "base_model": "SmolLM2-135M-Instruct",
          "datasets": [{"id": "ds_1", "name": "numbers", "role": "train", "format": "alpaca", "num_rows": 16,
                        "weight": None, "max_samples": None, "sha256": "ab" * 32, "registered": True},
                       {"id": "ds_2", "name": "held<out>", "role": "validation", "format": "alpaca", "num_rows": 4,
                        "weight": None, "max_samples": None, "sha256": None, "registered": False}],
          "parent": {"id": "job_p", "name": "first", "state": "succeeded", "exists": True},
          "children": [{"id": "job_g", "name": None, "state": None, "exists": False}],
          "exports": [{"id": "gguf-q8_0", "state": "succeeded", "format": "gguf", "quantization": "q8_0",
                       "dtype": None, "bytes": 2048}]}


def test_lineage_shows_datasets_with_hashes_parent_children_and_exports():
    text = lineage_html(REPORT, "en")
    assert "<b>numbers</b> <code>ds_1</code> · training · 16 rows · " in text
    assert f'title="sha256 {"ab" * 32}"' in text and "<code>abababababab…</code>" in text
    assert "held&lt;out&gt;" in text and "validation" in text and "deleted from the registry since" in text
    assert "<b>first</b> <code>job_p</code> · succeeded" in text
    assert "run <code>job_g</code> (deleted since)" in text
    assert "<code>gguf-q8_0</code> · gguf · q8_0 · succeeded · 2.0 KB" in text
    fresh = lineage_html({**REPORT, "parent": None, "children": [], "exports": []}, "zh")
    assert "从基座模型开始" in fresh and "暂无" in fresh and "验证" in fresh


def test_load_reads_the_api_and_offers_the_parent():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/job_x/lineage"):
            return httpx.Response(404, json={"message": "job job_x not found", "errors": [], "error_count": 1})
        return httpx.Response(200, json=REPORT)

    client = TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))
    text, button, parent = load(client, "en", "job_c")
    assert seen == ["/api/v1/jobs/job_c/lineage"] and parent == "job_p" and button.visible is True
    assert "numbers" in text
    text, button, parent = load(client, "en", "job_x")
    assert "job job_x not found" in text and parent is None and button.visible is False
    assert load(client, "en", None)[2] is None and len(seen) == 2  # nothing selected: nothing asked


def test_continue_training_is_offered_for_succeeded_runs_and_sets_the_parent():
    for state, shown in (("succeeded", True), ("running", False), ("failed", False), (None, False)):
        assert action_updates(state)[-1].visible is shown, state
    assert start_from_choice("job_p") == "run:job_p" and start_from_choice(None) is None
    status, init_from = continue_note("job_p", "Filled the form from run first.", "en")
    assert init_from == "job_p" and status.startswith("⏩ Continuing run `job_p`")
    assert status.endswith("Filled the form from run first.")
    assert "继续训练 `job_p`" in continue_note("job_p", "", "zh")[0]
