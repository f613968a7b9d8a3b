"""The model card lists a run's evaluations with what they measured, and says when the scored rows were trained on."""

import json

from backend.config.rundir import write_resolved_run
from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.exports.model_card import build_model_card


def write_evaluation(run_dir, eval_id: str, metrics: dict) -> None:
    folder = run_dir / "evaluations" / eval_id
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"id": eval_id, **metrics}), encoding="utf-8")


def test_evaluations_in_the_model_card(tmp_path):
    run_dir = tmp_path / "job_1"
    run = ResolvedRun(run_id="job_1", config=RunConfig.model_validate({"base_model": "m", "datasets": ["x"]}),
                      model_path=str(tmp_path / "m"), datasets=[DatasetRef(id="x", name="x", path=str(tmp_path / "x"))])
    write_resolved_run(run_dir, run)
    write_evaluation(run_dir, "ev_a", {"dataset": "held-out split", "samples": 4, "in_training": 0, "loss": 1.5})
    write_evaluation(run_dir, "ev_b", {"dataset": "numbers", "samples": 8, "in_training": 6, "loss": 0.5,
                                       "rouge_l": None})
    write_evaluation(run_dir, "ev_c", {"dataset": "pairs", "samples": 5, "in_training": 5, "loss": None,
                                       "pairwise_accuracy": 0.8, "mean_margin": 0.25})
    card = build_model_card(run_dir, "")
    assert "- evaluation `ev_a` on held-out split (4 samples): loss 1.5000" in card
    assert "- evaluation `ev_b` on numbers (8 samples, 6 of them in the training data): loss 0.5000" in card
    assert ("- evaluation `ev_c` on pairs (5 samples, 5 of them in the training data): pairwise_accuracy 0.8000, "
            "mean_margin 0.2500") in card
