"""Compare runs on the Runs page: overlaid loss curves (one colour per run) and a table of settings and results."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

pytest.importorskip("gradio")

from app.pages.compare import (  # noqa: E402
    compare_columns,
    compare_frames,
    compare_table,
    run_label,
    runtime_seconds,
)

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


def test_frames_overlay_the_runs_with_a_run_column():
    train, evals = compare_frames([("lora-aaaa", LORA_ROWS), ("my dpo · job_bbbb", DPO_ROWS)])
    assert list(train.columns) == ["step", "loss", "run"]
    assert [str(t) for t in train.dtypes] == ["int64", "float64", "string"]
    assert train.values.tolist() == [[1, 2.5, "lora-aaaa"], [2, 2.0, "lora-aaaa"], [3, 1.5, "lora-aaaa"],
                                     [1, 0.69, "my dpo · job_bbbb"]]  # the NaN loss is no point
    # both plots list both runs (a blank point for the one without eval loss), so their colours agree
    assert list(evals["run"]) == ["lora-aaaa", "my dpo · job_bbbb"]
    assert evals["loss"].iloc[0] == 2.2 and math.isnan(evals["loss"].iloc[1])
    assert compare_frames([("my dpo", DPO_ROWS)])[1] is None  # no eval loss anywhere: no eval plot data
    assert compare_frames([("a", []), ("b", [{"step": 1, "eval_loss": 1.0}])])[0] is None
    assert compare_frames([]) == (None, None)


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
