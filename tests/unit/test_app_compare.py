"""Compare runs on the Runs page: overlaid loss curves (one colour per run) and a table of settings and results."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

pytest.importorskip("gradio")

from app.pages.compare import (  # noqa: E402
    compare_charts,
    compare_columns,
    compare_table,
    run_label,
    runtime_seconds,
)
from app.pages.runs_charts import charts_html  # noqa: E402

LORA = {"id": "job_aaaa", "name": "lora-aaaa", "state": "succeeded",
        "config": {"method": {"name": "lora", "rank": 8}, "stage": "sft", "learning_rate": 0.0005, "num_epochs": 3.0},
        "started_at": "2025-03-01T10:00:00+00:00", "finished_at": "2025-03-01T10:02:05+00:00"}
DPO = {"id": "job_bbbb", "name": "my dpo", "state": "running",
       "config": {"base_model": "m", "datasets": ["d"], "method": {"name": "full"}, "stage": "dpo",
                  "learning_rate": None, "num_epochs": 2.0},
       "started_at": "2025-03-01T10:00:00Z", "finished_at": None}
LORA_ROWS = [{"step": 1, "loss": 2.5, "epoch": 0.5, "tokens_per_s": 100.0}, {"step": 2, "loss": 2.0, "epoch": 1.0,
             "tokens_per_s": 300.0}, {"step": 2, "eval_loss": 2.2, "epoch": 1.0}, {"step": 3, "loss": 1.5, "epoch": 1.5,
             "tokens_per_s": 200.0}]
DPO_ROWS = [{"step": 1, "loss": 0.69, "epoch": 0.1, "tokens_per_s": 50.0}, {"step": 2, "loss": float("nan")}]


def test_labels_carry_the_name_and_the_id_once():
    assert run_label(LORA) == "lora-aaaa"  # the default name already ends with the id
    assert run_label(DPO) == "my dpo · job_bbbb"
    assert run_label({"id": "job_cccc"}) == "job_cccc"


def test_charts_overlay_the_runs_one_colour_each():
    train, evals = compare_charts([("lora-aaaa", LORA_ROWS), ("my dpo · job_bbbb", DPO_ROWS)])
    assert [(s.label, s.points) for s in train.series] == [
        ("lora-aaaa", ((1, 2.5), (2, 2.0), (3, 1.5))), ("my dpo · job_bbbb", ((1, 0.69),))]  # the NaN is no point
    # both charts list both runs in the same colours (the run without eval loss has no points there)
    assert [(s.label, s.points) for s in evals.series] == [("lora-aaaa", ((2, 2.2),)), ("my dpo · job_bbbb", ())]
    assert [s.colour for s in train.series] == [s.colour for s in evals.series]
    assert train.series[0].colour != train.series[1].colour
    svg = charts_html([train])
    assert svg.count('class="ts-series"') == 2 and "my dpo · job_bbbb · 1: 0.69" in svg  # one point: a dot
    assert "ts-x-tick" in svg and charts_html([evals]).count('class="ts-series"') == 1
    assert "logged a step" in charts_html([compare_charts([("a", [])])[0]], "en", "chart.compare_no_points")


def test_table_rows_hold_settings_and_results():
    now = datetime(2025, 3, 1, 10, 1, 0, tzinfo=timezone.utc)
    table = compare_table([(LORA, LORA_ROWS), (DPO, DPO_ROWS), ({"id": "job_q", "state": "queued", "config": {
        "method": "qlora", "num_epochs": 1.0, "learning_rate": 0.0002}}, [])], now=now)
    assert list(table.columns) == compare_columns("en")
    rows = table.values.tolist()
    assert rows[0] == ["lora-aaaa", "succeeded", "lora", "0.0005", "1.5", "1.5", "2.2", "200", "2m 05s"]
    assert rows[1] == ["my dpo · job_bbbb", "running", "full (dpo)", "1e-06 (default)", "0.1", "0.69", "", "50", "1m 00s"]
    assert rows[2] == ["job_q", "queued", "qlora", "0.0002", "1 (planned)", "", "", "", ""]
    assert runtime_seconds({"started_at": None}) is None
