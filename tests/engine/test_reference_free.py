"""Stage dpo with the reference-free losses ORPO and SimPO, in-process: the built trainer holds no second model
(dpo's holds a frozen reference), the engine facts say so, and the losses' own hyperparameters reach trl. That
ORPO and SimPO runs raise the chosen - rejected margin without a reference model is proven through the API:
tests/api/test_stage_reference_free.py."""

from __future__ import annotations

import pytest
import torch

from backend.engine.model import load_tokenizer
from tests.engine.test_preference_train import PAIRS
from tests.engine.tiny_runs import make_run_dir, write_jsonl

pytestmark = pytest.mark.slow


def build_dpo_trainer(tmp_path, tiny_model_dir, **preference):
    """The stage's trainer for a full fine-tuning run, built in-process (no training)."""
    from backend.config import rundir
    from backend.engine import model as model_io
    from backend.engine import stages
    from backend.engine.stages import StageContext

    tmp_path.mkdir(parents=True)
    run_dir = make_run_dir(tmp_path, tiny_model_dir, write_jsonl(tmp_path / "pairs.jsonl", PAIRS), stage="dpo",
                           method="full", preference=preference)
    run = rundir.read_resolved_run(run_dir)
    tokenizer = load_tokenizer(tiny_model_dir)
    train_set, eval_set, _ = stages.build_datasets(run, tokenizer)
    precision = model_io.resolve_precision("fp32")
    model = model_io.load_model(tiny_model_dir, torch.float32)
    ctx = StageContext(run=run, run_dir=run_dir, model=model, tokenizer=tokenizer, peft_config=None,
                       precision=precision, train_dataset=train_set, eval_dataset=eval_set)
    return stages.get_stage("dpo").build_trainer(ctx), ctx


def loaded_models(trainer) -> list:
    from transformers import PreTrainedModel

    models = {id(value): value for value in vars(trainer).values() if isinstance(value, PreTrainedModel)}
    return list(models.values())  # model and model_wrapped are one model here


def test_full_fine_tuning_orpo_and_simpo_hold_one_model_where_dpo_holds_two(tmp_path, tiny_model_dir):
    dpo, dpo_ctx = build_dpo_trainer(tmp_path / "dpo", tiny_model_dir)
    assert len(loaded_models(dpo)) == 2 and dpo_ctx.facts["reference_model"] == "frozen copy of the base model"
    orpo, orpo_ctx = build_dpo_trainer(tmp_path / "orpo", tiny_model_dir, loss="orpo", orpo_lambda=0.3)
    assert loaded_models(orpo) == [orpo.model] and getattr(orpo, "ref_model", None) is None
    assert orpo_ctx.facts["reference_model"] == "none" and orpo.args.beta == 0.3
    simpo, _ = build_dpo_trainer(tmp_path / "simpo", tiny_model_dir, loss="simpo", sft_weight=0.5)
    assert loaded_models(simpo) == [simpo.model] and getattr(simpo, "ref_model", None) is None
    assert (simpo.loss_type, simpo.beta, simpo.simpo_gamma, simpo.cpo_alpha) == ("simpo", 2.0, 1.0, 0.5)
    batch = next(iter(simpo.get_train_dataloader()))
    assert {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"} <= set(batch)
