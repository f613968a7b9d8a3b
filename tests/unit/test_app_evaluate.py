"""The Evaluate tab: it builds, its formatting helpers say the right things, its client methods reach the API."""

from __future__ import annotations

import json

import pytest

from app.client import ApiError
from app.pages.evaluate import (
    HELD_OUT,
    HISTORY_COLUMNS,
    PREDICTION_COLUMNS,
    column_widths,
    dataset_choices,
    fmt_share,
    has_held_out,
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


def test_the_prompt_column_names_roles_in_the_ui_language():
    """The zh predictions table said "user: What is 0 plus 3?"."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert prompt_text(messages, lang="zh") == "系统: Be brief.\n用户: 2+2?"
    frame = predictions_frame([{"prompt": messages, "reference": "4", "prediction": "4"}], "zh")
    assert frame.iloc[0, 0].endswith("用户: 2+2?")


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


SIDE = {**METRICS, "job_id": "job_1", "split": "dataset", "in_training": 3,
        "base": {"loss": 2.5, "perplexity": 12.18, "exact_match": 0.0, "rouge_l": 0.25, "bleu": None,
                 "model": "/m/base"},
        "delta": {"loss": 1.23456 - 2.5, "perplexity": 3.437 - 12.18, "exact_match": 0.25, "rouge_l": 0.6123 - 0.25}}


def test_run_vs_base_is_a_table_with_the_delta_and_says_which_rows_were_trained_on():
    text = metrics_markdown(SIDE)
    assert "**Run vs base model** (`/m/base`, same rows, same tokens):" in text
    assert "| metric | base model | this run | Δ |" in text
    assert "| loss | 2.5 | 1.235 | −1.265 |" in text
    assert "| exact match | 0.0% | 25.0% | +25.0 pt |" in text and "| BLEU-4 | — | — | — |" in text
    assert "⚠ These rows were in the training data: 3 of the 4 rows were trained on" in text
    held = metrics_markdown({**METRICS, "split": "held_out", "dataset": "held-out split", "in_training": 0})
    assert "✓ Held-out split: these 4 rows were kept out of training" in held and "`held-out split`" in held
    assert "None of these rows were in the run's training data" in metrics_markdown({**METRICS, "in_training": 0})
    assert "training data" not in metrics_markdown(METRICS)  # a base model's evaluation: nothing to say
    assert history_frame([SIDE]).iloc[0].tolist()[4] == "1.235 (base 2.5)"
    zh = metrics_markdown(SIDE, "zh")
    assert "运行与基础模型对比" in zh and "这些行在训练数据中" in zh and "| 损失 | 2.5 | 1.235 | −1.265 |" in zh


def test_reward_model_evaluation_shows_pairwise_accuracy_side_by_side():
    rm = {**METRICS, "loss": None, "perplexity": None, "exact_match": None, "rouge_l": None, "predictions": 0,
          "pairwise_accuracy": 0.8, "mean_margin": 0.42, "pairs": 5, "in_training": 5, "split": "dataset",
          "base": {"pairwise_accuracy": 0.4, "mean_margin": -0.01, "pairs": 5, "model": "/m/base"},
          "delta": {"pairwise_accuracy": 0.4, "mean_margin": 0.43}}
    text = metrics_markdown(rm)
    assert "**pairwise accuracy 80.0%** · mean margin 0.42 · 5 pairs" in text and "no loss" not in text
    assert "| pairwise accuracy | 40.0% | 80.0% | +40.0 pt |" in text and "| mean margin | -0.01 | 0.42 | +0.43 |" in text
    assert history_frame([rm]).iloc[0].tolist()[7] == "pairs 80.0%"
    rows = [{"prompt": [{"role": "user", "content": "Q"}], "chosen": "good", "rejected": "bad", "margin": 0.5,
             "correct": True, "base_margin": -0.1, "base_correct": False, "in_training": True}]
    table = predictions_frame(rows)
    assert list(table.columns) == ["prompt", "chosen", "rejected", "margin base → run", "ranked right (base)",
                                   "trained on"]
    assert table.iloc[0].tolist() == ["user: Q", "good", "bad", "-0.1 → 0.5", "✓ (✗)", "⚠ yes"]


def test_side_by_side_predictions_show_base_run_and_reference_with_room_for_the_replies():
    rows = [{"prompt": [{"role": "user", "content": "2+2?"}], "reference": "4", "prediction": "4", "rouge_l": 1.0,
             "exact_match": True, "base_prediction": "five", "base_rouge_l": 0.0, "in_training": False},
            {"prompt": [{"role": "user", "content": "3+3?"}], "reference": "6", "prediction": "6", "rouge_l": 1.0,
             "exact_match": True, "base_prediction": "6", "base_rouge_l": 1.0, "in_training": True}]
    table = predictions_frame(rows)
    assert list(table.columns) == ["prompt", "prediction (base model)", "prediction (this run)", "reference",
                                   "ROUGE-L base → run", "trained on"]
    assert table.iloc[0].tolist() == ["user: 2+2?", "five", "4", "4", "0.0% → 100.0%", ""]
    assert table.iloc[1].tolist()[-1] == "⚠ yes"
    widths = column_widths(rows)
    assert len(widths) == 6 and 90 <= sum(float(w[:-1]) for w in widths) <= 96
    assert float(widths[0][:-1]) < float(widths[1][:-1])  # the replies get more room than the prompt
    alone = [{k: v for k, v in rows[0].items() if not k.startswith("base_")}]
    assert list(predictions_frame(alone).columns) == [*PREDICTION_COLUMNS, "trained on"]


def test_a_run_that_held_rows_out_offers_its_held_out_split_first():
    datasets = [{"id": "ds_chat", "name": "chat", "num_rows": 10, "format": "alpaca"},
                {"id": "ds_pairs", "name": "pairs", "num_rows": 5, "format": "preference"}]
    job = {"id": "job_1", "config": {"stage": "sft", "val_size": 0.1, "val_datasets": []}}
    choices = dataset_choices(datasets, job)
    assert choices[0] == ("Held-out split of this run (rows it did not train on)", HELD_OUT)
    assert [value for _, value in choices[1:]] == ["ds_chat", "ds_pairs"] and has_held_out(job)
    no_split = {"id": "job_2", "config": {"stage": "sft", "val_size": 0.0, "val_datasets": []}}
    assert [value for _, value in dataset_choices(datasets, no_split)] == ["ds_chat", "ds_pairs"]
    assert has_held_out({"config": {"val_size": 0, "val_datasets": ["ds_x"]}})
    rm = {"id": "job_3", "config": {"stage": "rm", "val_size": 0.0, "val_datasets": []}}
    assert [value for _, value in dataset_choices(datasets, rm)] == ["ds_pairs"]  # a reward model scores pairs
    assert [value for _, value in dataset_choices(datasets, None)] == ["ds_chat", "ds_pairs"]  # a base model
    assert dataset_choices(datasets, job, "zh")[0][0].startswith("此运行的验证集")


def test_picking_a_base_model_hides_the_base_comparison(client):
    from app.pages.evaluate import on_target

    *_, datasets, with_base = on_target(client, "en", "model:SmolLM2-135M-Instruct", None)
    assert with_base.visible is False
    assert HELD_OUT not in [value for _, value in datasets.choices]


def test_the_progress_line_names_the_phase_and_the_rows_done():
    from app.pages.evaluate import progress_desc

    state = {"running": True, "phase": "base:predictions", "done": 3, "total": 8, "fraction": 0.84}
    assert progress_desc(state) == (0.84, "Evaluating the base model: predictions, rows 3/8")
    assert progress_desc({**state, "phase": "run:loss"}, "zh")[1] == "正在评估此运行：计算回复词元的损失，样本 3/8"
    assert progress_desc({**state, "phase": "run:loss"}, kind="model")[1].startswith("Evaluating the model:")
    assert progress_desc({"running": True, "phase": None}) == (None, "Evaluating: loading the model…")
    assert progress_desc({"running": False}) == (None, "Evaluating: loading the model…")


def test_picking_a_run_that_held_rows_out_preselects_its_held_out_split(tmp_path):
    from app.client import TunesmithClient
    from app.pages.evaluate import on_target
    from backend.api.main import create_app
    from backend.jobs.store import JobRow, utc_now
    from backend.settings import Settings
    from tests.live_server import serving

    app = create_app(Settings.from_env(tmp_path / "home"), start_runner=False, register_builtins=False)
    with serving(app) as url:
        ui = TunesmithClient(f"{url}/api/v1", timeout=30)
        try:
            for job_id, val_size in (("job_split", 0.25), ("job_plain", 0.0)):
                app.state.jobs.store.insert(JobRow(
                    id=job_id, name=job_id, state="succeeded", created_at=utc_now(), output="adapter",
                    config={"base_model": "m", "datasets": ["x"], "val_size": val_size}, run_dir=str(tmp_path / job_id)))
            *_, datasets, with_base = on_target(ui, "en", "job:job_split", "ds_other")
            assert datasets.value == HELD_OUT and with_base.visible is True
            assert datasets.choices[0][1] == HELD_OUT
            *_, datasets, _ = on_target(ui, "en", "job:job_plain", HELD_OUT)  # no split: nothing held over from before
            assert datasets.value is None and HELD_OUT not in [value for _, value in datasets.choices]
        finally:
            ui.close()


def test_evaluate_waits_for_a_target_and_a_dataset():
    """Evaluate was enabled with nothing picked and only said "pick both" when pressed."""
    from app.pages.evaluate import start_ready

    assert start_ready(None, None)["interactive"] is False
    assert start_ready("job:job_1", None)["interactive"] is False
    assert start_ready(None, "ds_1")["interactive"] is False
    assert start_ready("job:job_1", HELD_OUT)["interactive"] is True
    assert start_ready("model:SmolLM2-135M-Instruct", "ds_1")["interactive"] is True
