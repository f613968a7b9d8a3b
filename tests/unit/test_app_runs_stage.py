"""The Runs page per stage: a grpo run's charts (mean reward, total and per reward function; KL; reply length) and
its sampled replies on the card; dpo/kto/rm runs' reward margin and accuracy charts next to the loss; the tracker
line (where TensorBoard / MLflow / W&B data is and how to open it) from engine.json's ``tracker`` fact. Rows as the
engine writes them (key names from tests/api/test_stage_grpo.py, test_stage_rm.py, test_jobs_preference.py)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("gradio")

from app.pages.runs_card import status_html  # noqa: E402
from app.pages.runs_charts import metrics_html, reward_function_names  # noqa: E402
from app.pages.runs_tracker import tracker_html  # noqa: E402
from backend.engine.log_lines import latest_samples  # noqa: E402

GRPO_ROWS = [
    {"step": 1, "total_steps": 3, "loss": 0.0, "lr": 0.02, "grad_norm": 0.5, "reward": 0.375, "reward_std": 0.5,
     "rewards/regex/mean": 0.375, "rewards/exact_match/mean": 0.0, "kl": 0.0, "completions/mean_length": 2.0,
     "samples": [{"prompt": "What is 2+2?", "completion": " 4", "rewards": {"regex": 0.0, "exact_match": 0.0},
                  "reward": 0.0}]},
    {"step": 2, "total_steps": 3, "loss": 0.0, "lr": 0.01, "grad_norm": 0.4, "reward": 0.625,
     "rewards/regex/mean": 0.625, "rewards/exact_match/mean": 0.125, "kl": 0.0012, "completions/mean_length": 1.5,
     "samples": [{"prompt": "What is 2+2?", "completion": "four <b>", "rewards": {"regex": 1.0, "exact_match": 0.0},
                  "reward": 1.0},
                 {"prompt": "Say 4", "completion": "4", "rewards": {"regex": 0.0, "exact_match": 1.0},
                  "reward": 0.5}]},
    {"step": 2, "eval_loss": 0.0, "eval_reward": 0.5},
]


def charts(html: str) -> list[str]:
    return re.findall(r'data-chart="(\w+)"', html)


def figure(html: str, chart: str) -> str:
    return re.search(rf'data-chart="{chart}">(.*?)</figure>', html).group(1)


def test_a_grpo_run_charts_its_rewards_per_function_kl_and_reply_length_next_to_the_loss():
    html = metrics_html(GRPO_ROWS, "en")
    assert charts(html) == ["loss", "reward", "kl", "completion_length", "grad_norm", "lr"]
    reward = figure(html, "reward")
    assert re.findall(r'data-series="([^"]+)"', reward) == ["total (weighted)", "regex", "exact_match"]
    assert "regex · 2: 0.625" in reward and "exact_match · 2: 0.125" in reward and "total (weighted) · 1: 0.375" in reward
    assert re.findall(r'class="ts-x-tick"[^>]*>([^<]*)<', reward) == ["1", "2"]  # whole steps
    assert "KL · 2: 0.0012" in figure(html, "kl") and "tokens · 2: 1.5" in figure(html, "completion_length")
    assert "reward_margin" not in charts(html)  # a grpo run has no preference pairs
    assert reward_function_names(GRPO_ROWS) == ["regex", "exact_match"]
    zh = metrics_html(GRPO_ROWS, "zh")
    assert ">采样回复的平均奖励<" in zh and "总计（加权）" in zh and ">平均回复长度<" in zh


def test_a_one_step_grpo_run_draws_dots_and_beta_zero_has_no_kl_chart():
    html = metrics_html([{"step": 1, "loss": 0.0, "reward": 0.25, "rewards/regex/mean": 0.25,
                          "completions/mean_length": 2.0}], "en")
    assert charts(html) == ["loss", "reward", "completion_length"]
    reward = figure(html, "reward")
    assert reward.count("<circle") == 2 and "<path" not in reward
    assert re.findall(r'class="ts-x-tick"[^>]*>([^<]*)<', reward) == ["0", "1", "2"]


def test_preference_runs_chart_reward_margin_and_accuracy_train_and_eval():
    dpo = [{"step": 1, "loss": 0.69, "rewards/margins": 0.0, "rewards/accuracies": 0.0},
           {"step": 2, "loss": 0.52, "rewards/margins": 0.4213, "rewards/accuracies": 0.75},
           {"step": 2, "eval_loss": 0.5, "eval_rewards/margins": 0.3, "eval_rewards/accuracies": 0.5}]
    html = metrics_html(dpo, "en")
    assert charts(html)[:3] == ["loss", "reward_margin", "reward_accuracy"]
    margin = figure(html, "reward_margin")
    assert "train · 2: 0.4213" in margin and "eval · 2: 0.3" in margin and ">Reward margin" in margin
    assert "eval · 2: 0.5" in figure(html, "reward_accuracy")
    rm = metrics_html([{"step": 1, "loss": 0.4, "accuracy": 1.0, "margin": 2.5},
                       {"step": 1, "eval_loss": 0.5, "eval_accuracy": 0.5, "eval_margin": 1.25}], "en")
    assert charts(rm)[:3] == ["loss", "reward_margin", "reward_accuracy"]
    assert "train · 1: 2.5" in figure(rm, "reward_margin") and "eval · 1: 1.25" in figure(rm, "reward_margin")
    assert ">奖励准确率" in metrics_html(dpo, "zh")
    sft = metrics_html([{"step": 1, "loss": 2.0, "lr": 1e-4, "grad_norm": 1.0}], "en")
    assert charts(sft) == ["loss", "grad_norm", "lr"]


def test_the_card_shows_the_latest_sampled_replies_with_their_rewards():
    card = status_html({"id": "job_g", "state": "running", "step": 2, "total_steps": 3}, GRPO_ROWS, "en")
    samples = card.split('class="ts-samples"')[1]
    assert "Sampled replies · step 2" in samples
    assert re.findall(r"<th>([^<]*)</th>", samples) == ["prompt (last turn)", "reply", "reward (weighted)", "regex",
                                                       "exact_match"]
    assert "four &lt;b&gt;" in samples and "<td>1</td><td>0</td>" in samples and "<b>0.5</b>" in samples
    assert "ts-text\"> 4</td>" not in samples  # step 1's samples are not shown any more
    assert "第 2 步" in status_html({"id": "job_g", "state": "running"}, GRPO_ROWS, "zh")
    assert "ts-samples" not in status_html({"id": "job_s", "state": "running"}, [{"step": 1, "loss": 2.0}])


def test_the_engine_keeps_the_last_two_samples_clipped_with_weighted_rewards():
    prompts = [[{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"}] for i in range(4)]
    replies = [[{"role": "assistant", "content": f" reply {i}" + "x" * (300 if i == 3 else 0)}] for i in range(4)]
    rewards = {"regex": [1.0, 0.0, 1.0, float("nan")], "length": [0.5, 0.5, 0.25, 1.0]}
    samples = latest_samples(prompts, replies, rewards, [1.0, 2.0])
    assert [s["prompt"] for s in samples] == ["q2", "q3"]
    assert samples[0] == {"prompt": "q2", "completion": " reply 2", "rewards": {"regex": 1.0, "length": 0.25},
                          "reward": 1.5}
    assert samples[1]["rewards"] == {"regex": None, "length": 1.0} and samples[1]["reward"] == 2.0
    assert len(samples[1]["completion"]) == 200 and samples[1]["completion"].endswith("…")
    assert latest_samples(["p"], ["plain text"], {"f": [None]}, [1.0]) == [
        {"prompt": "p", "completion": "plain text", "rewards": {"f": None}, "reward": None}]
    assert latest_samples([], [], {"f": []}, [1.0]) == []


def test_the_tracker_line_says_where_the_data_is_and_how_to_open_it():
    card = status_html({"id": "job_t", "state": "succeeded", "engine": {
        "precision": "fp32", "tracker": {"name": "tensorboard", "location": "/studio/runs/job_t/tensorboard"}}}, [])
    assert "TensorBoard event files in /studio/runs/job_t/tensorboard" in card
    assert "<code>tensorboard --logdir /studio/runs/job_t/tensorboard</code>" in card
    mlflow = tracker_html({"tracker": {"name": "mlflow", "location": "file:///home/me/my studio/mlruns"}}, "job_m")
    assert "<code>mlflow ui --backend-store-uri &#x27;file:///home/me/my studio/mlruns&#x27;</code>" in mlflow
    assert "experiment &#x27;tunesmith&#x27;, the run named job_m (tag tunesmith.run_id=job_m)" in mlflow
    recorded = tracker_html({"tracker": {"name": "mlflow", "location": "file:///s/mlruns", "run_id": "ab12",
                                         "experiment_id": "7"}}, "job_m")
    assert "run ab12, then open http://127.0.0.1:5000/#/experiments/7/runs/ab12" in recorded
    wandb = tracker_html({"tracker": {"name": "wandb", "location": "/r/job_w/wandb", "mode": "offline"}}, "job_w")
    assert "offline" in wandb and "<code>wandb sync /r/job_w/wandb/offline-run-*</code>" in wandb
    online = tracker_html({"tracker": {"name": "wandb", "location": "/r/job_w/wandb", "mode": "online"}}, "job_w")
    assert "online" in online and "<code>" not in online
    assert "实验跟踪" in tracker_html({"tracker": {"name": "tensorboard", "location": "/x"}}, "j", "zh")
    assert tracker_html({"precision": "fp32"}, "job_n") == "" and tracker_html(None, "job_n") == ""
    assert "ts-tracker" not in status_html({"id": "job_n", "state": "running", "engine": {"precision": "fp32"}}, [])


def test_compare_draws_the_rewards_of_the_runs_that_log_them():
    import re as regex

    from app.pages.runs_charts import charts_html, stage_compare_charts

    runs = [("grpo-a", GRPO_ROWS), ("dpo-b", [{"step": 1, "loss": 0.69, "rewards/margins": 0.1}]),
            ("rm-c", [{"step": 1, "loss": 0.5, "margin": 2.0, "accuracy": 1.0}]), ("sft-d", [{"step": 1, "loss": 2.0}])]
    html = charts_html(stage_compare_charts(runs, "en"), "en")
    assert regex.findall(r'data-chart="(\w+)"', html) == ["compare_reward", "compare_reward_margin",
                                                         "compare_reward_accuracy"]
    assert "grpo-a · 2: 0.625" in figure(html, "compare_reward")
    margin = figure(html, "compare_reward_margin")
    assert "dpo-b · 1: 0.1" in margin and "rm-c · 1: 2" in margin and "sft-d ·" not in margin
    assert charts_html(stage_compare_charts([("sft-d", [{"step": 1, "loss": 2.0}])]), "en").count("<figure") == 0


def test_the_session_cache_keeps_only_the_newest_samples():
    from app.pages.runs import latest_samples_only

    kept = latest_samples_only(GRPO_ROWS)
    assert "samples" not in kept[0] and kept[1] == GRPO_ROWS[1] and kept[2] == GRPO_ROWS[2]
    assert kept[0] == {k: v for k, v in GRPO_ROWS[0].items() if k != "samples"} and "samples" in GRPO_ROWS[0]
    assert latest_samples_only([{"step": 1, "loss": 2.0}]) == [{"step": 1, "loss": 2.0}]
    assert status_html({"id": "g", "state": "running"}, kept, "en").count("<tr>") == 3  # the header + step 2's two
