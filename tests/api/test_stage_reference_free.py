"""Stage dpo with the reference-free losses ORPO and SimPO, through the API: one studio trains a LoRA of the tiny
random Llama on the hand-made pairs of the dpo tests with each loss (real ``accelerate launch`` jobs of the runner).

Asserted: the policy prefers the chosen replies more after training than the base did (log-prob margin chosen -
rejected, measured in-process with the saved adapter), the Runs card's reward margin rises, no reference model was
loaded (result.json: reference_model "none"), each output downloads as an adapter, and ORPO's answers through the
chat endpoint with its own weights and merges into a model that computes what base + adapter compute. (That the built
trainer holds no second model, and the losses' own hyperparameters reach trl, is
tests/engine/test_reference_free.py.)"""

from __future__ import annotations

import pytest

from backend.engine.model import load_tokenizer
from tests.api.stage_checks import (
    TINY_RUN,
    adapter_zip_names,
    assert_chats_with_its_weights,
    assert_merge_keeps_the_adapter,
    finished,
    result,
    run_dir,
    step_rows,
    submit_job,
    upload_pairs,
)
from tests.engine.cpu_jobs import studio
from tests.engine.test_preference_train import PAIRS, margins
from tests.engine.tiny_runs import write_jsonl

pytestmark = pytest.mark.slow

DPO = {**TINY_RUN, "stage": "dpo", "lora_rank": 4, "max_steps": 6}
JOBS = {"orpo": {**DPO, "preference": {"loss": "orpo", "orpo_lambda": 0.5}},
        "simpo": {**DPO, "preference": {"loss": "simpo"}}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """(client, name -> finished job, the pairs file)."""
    home = tmp_path_factory.mktemp("stage_reference_free")
    pairs_file = write_jsonl(home / "pairs.jsonl", PAIRS)
    with studio(home, tiny_model_dir) as client:
        pairs = upload_pairs(client, PAIRS)
        ids = {name: submit_job(client, {**config, "datasets": [pairs]}) for name, config in JOBS.items()}
        yield client, finished(client, ids), pairs_file


@pytest.mark.parametrize("name", ["orpo", "simpo"])
def test_reference_free_losses_raise_the_margin_without_a_reference_model(runs, name, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    client, jobs, pairs_file = runs
    job = jobs[name]
    done = result(job)
    assert done["status"] == "succeeded" and done["output"] == "adapter" and done["reference_model"] == "none"
    rows = step_rows(client, job["id"])
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(rows[-1])
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"]
    tokenizer = load_tokenizer(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    start = margins(base, tokenizer, pairs_file)
    after = margins(PeftModel.from_pretrained(base, run_dir(job) / "adapter").eval(), tokenizer, pairs_file)
    print(f"{name}: mean log-prob margin chosen - rejected {start.mean():.3f} -> {after.mean():.3f}; Runs card "
          f"reward margin {rows[0]['rewards/margins']:.3f} -> {rows[-1]['rewards/margins']:.3f}")
    assert after.mean() > start.mean() + 1.0, (start, after)
    adapter_zip_names(client, job["id"])  # downloads as an adapter


def test_reference_free_output_chats_and_merges(runs, tiny_model_dir):
    """ORPO's run; SimPO's output is of the same kind (a LoRA adapter of the causal LM, stage dpo)."""
    client, jobs, _ = runs
    job = jobs["orpo"]
    assert_chats_with_its_weights(client, job["id"], "adapter", tiny_model_dir, run_dir(job) / "adapter")
    assert_merge_keeps_the_adapter(client, job, tiny_model_dir)
