"""Stage dpo with the reference-free losses ORPO and SimPO: real ``python -m backend.engine train`` subprocesses on
the tiny random-init Llama (CPU). The policy prefers the chosen replies more after training than the base did, no
reference model is loaded (engine facts, and the built trainer holds no second model), and the loss's own
hyperparameters reach trl."""

from __future__ import annotations

import pytest
import torch

from backend.engine.model import load_tokenizer
from tests.engine.test_preference_train import PAIRS, base_and_adapted, events, margins, train
from tests.engine.tiny_runs import make_run_dir, read_result, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def orpo_lora(tmp_path_factory, tiny_model_dir):
    return train(tmp_path_factory, tiny_model_dir, "orpo", stage="dpo", method="lora", lora_rank=4,
                 preference={"loss": "orpo", "orpo_lambda": 0.5})


@pytest.fixture(scope="module")
def simpo_lora(tmp_path_factory, tiny_model_dir):
    return train(tmp_path_factory, tiny_model_dir, "simpo", stage="dpo", method="lora", lora_rank=4,
                 preference={"loss": "simpo"})


@pytest.mark.parametrize("fixture", ["orpo_lora", "simpo_lora"])
def test_reference_free_losses_raise_the_margin_without_a_reference_model(fixture, request, tiny_model_dir):
    run_dir = request.getfixturevalue(fixture)
    result = read_result(run_dir)
    assert result["status"] == "succeeded" and result["output"] == "adapter"
    assert result["reference_model"] == "none"
    rows = [row for row in events(run_dir) if "loss" in row]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(rows[-1])
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"]
    start, adapted = base_and_adapted(tiny_model_dir, run_dir / "adapter")
    after = margins(adapted, load_tokenizer(tiny_model_dir), run_dir.parent / "pairs.jsonl")
    assert after.mean() > start.mean() + 1.0, (start, after)


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
