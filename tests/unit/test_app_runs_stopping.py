"""The Runs card says where and why early stopping ended a run and which checkpoint is its output."""

from app.pages.runs_card import status_html
from app.pages.runs_stopping import stopping_facts

ENGINE = {
    "precision": "fp32",
    "early_stopping": {
        "stopped": True,
        "stopped_at_step": 5,
        "max_steps": 30,
        "patience": 2,
        "threshold": 0.0,
        "reason": "...",
    },
    "best_checkpoint": {"step": 3, "eval_loss": 5.96675, "loaded": True},
}


def test_card_says_where_and_why_it_stopped_and_the_best_step() -> None:
    card = status_html({"id": "job_e", "state": "succeeded", "engine": ENGINE}, [])
    assert "early stopping" in card and "at step 5 of 30" in card and "for 2 evaluation(s) in a row" in card
    assert "best checkpoint" in card and "step 3, eval loss 5.967 (this is the output)" in card


def test_in_chinese_and_when_it_did_not_trigger() -> None:
    zh = dict(stopping_facts(ENGINE, "zh"))
    assert zh["早停"].startswith("于第 5/30 步") and "（即输出）" in zh["最佳检查点"]
    quiet = {
        "early_stopping": {"stopped": False, "max_steps": 30, "patience": 2, "threshold": 0.0},
        "best_checkpoint": {"step": 30, "eval_loss": 1.0, "loaded": False},
    }
    assert stopping_facts(quiet) == [
        ("early stopping", "did not trigger: eval loss kept improving"),
        ("best checkpoint", "step 30, eval loss 1"),
    ]
    assert stopping_facts(None) == [] and stopping_facts({"precision": "bf16"}) == []
