"""The Evaluate tab: it builds, its formatting helpers say the right things, its client methods reach the API."""

from __future__ import annotations

import json

import pytest

from app.client import ApiError
from app.pages.evaluate import (
    HISTORY_COLUMNS,
    PREDICTION_COLUMNS,
    fmt_share,
    history_choices,
    history_frame,
    metrics_markdown,
    parse_target,
    predictions_frame,
    prompt_text,
    read_predictions,
    target_choices,
)

METRICS = {"id": "ev_0123456789", "created_at": "2025-01-02T03:04:05.000+00:00", "loss": 1.23456, "perplexity": 3.437,
           "exact_match": 0.25, "rouge_l": 0.6123, "bleu": None, "samples": 4, "predictions": 3, "loss_tokens": 40,
           "cutoff_len": 64, "max_new_tokens": 16, "seconds": 75.2, "device": "cpu", "dtype": "float32",
           "model": "/m/base", "adapter": "/runs/job_1/adapter", "dataset": "numbers",
           "skipped": {"raw text": 1}}


def test_the_page_builds_inside_the_studio():
    from app.main import build_app

    demo = build_app("http://127.0.0.1:9/api/v1")  # nothing is fetched while building
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"tab-evaluate", "eval-target", "eval-dataset", "eval-samples", "eval-max-new-tokens", "eval-start",
            "eval-metrics", "eval-download", "eval-predictions", "eval-history", "eval-pick"} <= ids


def test_targets_are_succeeded_runs_newest_first_then_base_models():
    jobs = [{"id": "job_a", "name": "old", "state": "succeeded", "finished_at": "2025-01-01T00:00:00"},
            {"id": "job_b", "name": "new", "state": "succeeded", "finished_at": "2025-02-01T00:00:00"},
            {"id": "job_c", "name": "broken", "state": "failed"}]
    choices = target_choices([{"id": "SmolLM2-135M-Instruct"}], jobs)
    assert [value for _, value in choices] == ["job:job_b", "job:job_a", "model:SmolLM2-135M-Instruct"]
    assert choices[0][0].startswith("Run · new · job_b") and choices[2][0] == "Base model · SmolLM2-135M-Instruct"
    assert parse_target("job:job_b") == ("job", "job_b")
    assert parse_target("model:/abs/path:with-colon") == ("model", "/abs/path:with-colon")
    assert parse_target(None) is None and parse_target("job:") is None and parse_target("other:x") is None


def test_metrics_markdown_says_what_was_measured_and_on_what():
    text = metrics_markdown(METRICS)
    assert "**loss 1.235**" in text and "perplexity 3.437" in text
    assert "exact match 25.0%" in text and "ROUGE-L 61.2%" in text and "BLEU-4 —" in text
    assert "4 rows of `numbers`" in text and "40 reply tokens (cutoff 64)" in text
    assert "3 predictions of at most 16 tokens" in text and "1m 15s on cpu float32" in text
    assert "model `/m/base` + adapter `/runs/job_1/adapter`" in text
    assert "No prediction for 1 (raw text)." in text
    assert "no loss" in metrics_markdown({**METRICS, "loss": None, "perplexity": None})


def test_shares_are_percentages_and_missing_values_a_dash():
    assert fmt_share(0.5) == "50.0%" and fmt_share(1) == "100.0%" and fmt_share(0.0) == "0.0%"
    assert fmt_share(None) == fmt_share(True) == fmt_share(float("nan")) == "—"


def test_history_and_predictions_tables(tmp_path):
    frame = history_frame([METRICS])
    assert list(frame.columns) == HISTORY_COLUMNS
    assert frame.iloc[0].tolist()[1:] == ["ev_0123456789", "numbers", 4, "1.235", "3.437", "25.0%", "61.2%", "—"]
    assert history_choices([METRICS])[0][1] == "ev_0123456789" and "loss 1.235" in history_choices([METRICS])[0][0]

    rows = [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
             "reference": "4", "prediction": "4", "exact_match": True, "rouge_l": 1.0},
            {"prompt": [{"role": "user", "content": "Capital of France?"}], "reference": "Paris.",
             "prediction": "Lyon.", "exact_match": False, "rouge_l": 0.0}]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    table = predictions_frame(read_predictions(path))
    assert list(table.columns) == PREDICTION_COLUMNS
    assert table.iloc[0].tolist() == ["system: Be brief.\nuser: 2+2?", "4", "4", "100.0%", "✓"]
    assert table.iloc[1].tolist() == ["user: Capital of France?", "Paris.", "Lyon.", "0.0%", ""]


def test_a_long_prompt_keeps_its_newest_turn():
    messages = [{"role": "user", "content": "x" * 1000}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "the question"}]
    text = prompt_text(messages, limit=100)
    assert len(text) == 100 and text.startswith("…") and text.endswith("user: the question")


def test_client_evaluation_errors_come_back_readable(client, tmp_path):
    assert client.list_evaluations(model="nothing-here") == []
    with pytest.raises(ApiError) as err:
        client.list_evaluations(job_id="job_nope")
    assert err.value.status_code == 404 and "job_nope" in str(err.value)
    with pytest.raises(ApiError) as err:
        client.evaluate("identity", model="no-such-model", max_samples=2)
    assert err.value.status_code == 404 and "unknown model 'no-such-model'" in str(err.value)
    with pytest.raises(ApiError) as err:
        client.evaluate("identity", model="x", max_samples=0)
    assert err.value.status_code == 422 and "max_samples" in str(err.value)
    with pytest.raises(ApiError) as err:
        client.download_predictions("ev_0000000000", tmp_path / "never.jsonl")
    assert err.value.status_code == 404 and not (tmp_path / "never.jsonl").exists()
