"""Stage rm, and RM -> RL, through the API: one studio trains the tiny random Llama on the hand-made pairs of the
dpo tests (tests/engine/test_preference_train.PAIRS) as a LoRA and a full reward model, then a grpo run whose reward
is the LoRA reward model (named by its job id). Each job is a real ``accelerate launch`` subprocess of the runner.

Asserted: after training each reward model ranks the chosen reply above the rejected one on more pairs than the
untrained model (same score-head initialisation, seed 42) did, and on every pair; the Runs card's metrics hold
accuracy and a rising margin; the LoRA output is adapters + score head, the full one a sequence classifier; a
reward model is not chatted with (422) but downloads and merges into a sequence classifier that scores like the
adapter, and Evaluate scores it on pairs beside its untrained start; the grpo run logs the reward model's (varying)
mean reward and its own output exports and chats; a grpo run naming no run, an unfinished run or a run of another
stage as its reward model is a 422 (nothing stored)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from backend.engine.model import load_tokenizer
from backend.engine.preference import tokenize_pair
from backend.engine.rows import iter_rows
from tests.api.stage_checks import (
    TINY_RUN,
    adapter_zip_names,
    assert_chats_with_its_weights,
    assert_merge_keeps_the_adapter,
    finished,
    merge,
    result,
    run_dir,
    step_rows,
    submit_job,
    upload_pairs,
)
from tests.engine.cpu_jobs import studio, upload_conversations
from tests.engine.test_preference_train import PAIRS
from tests.engine.tiny_runs import write_jsonl

pytestmark = pytest.mark.slow

RM = {**TINY_RUN, "stage": "rm", "max_steps": 6}
JOBS = {"rm_lora": {**RM, "lora_rank": 4}, "rm_full": {**RM, "method": "full", "learning_rate": 1e-3}}


def grpo_with_reward_model(dataset: str, rm_id: str) -> dict:
    return {**TINY_RUN, "datasets": [dataset], "stage": "grpo", "lora_rank": 4, "max_steps": 2,
            "per_device_batch_size": 4, "cutoff_len": 128,
            "grpo": {"num_generations": 4, "max_completion_length": 4, "beta": 0.05,  # KL to the adapter-off base
                     "rewards": [{"name": "reward_model", "run": rm_id},
                                 {"name": "length", "target_chars": 8, "weight": 0.5}]}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """(client, name -> finished job, the pairs file, name -> a refused POST /jobs): rm_lora, rm_full, and grpo_rm
    scored by rm_lora; grpo runs naming no run, an unfinished one (rm_full while queued) and a grpo run."""
    home = tmp_path_factory.mktemp("stage_rm")
    pairs_file = write_jsonl(home / "pairs.jsonl", PAIRS)
    with studio(home, tiny_model_dir) as client:
        pairs = upload_pairs(client, PAIRS)
        ids = {name: submit_job(client, {**config, "datasets": [pairs], "name": name}) for name, config in JOBS.items()}
        chats = upload_conversations(client)
        refused = {"missing": client.post("/api/v1/jobs", json=grpo_with_reward_model(chats, "job_0000000000")),
                   "unfinished": client.post("/api/v1/jobs", json=grpo_with_reward_model(chats, ids["rm_full"]))}
        jobs = finished(client, {"rm_lora": ids.pop("rm_lora")})
        ids["grpo_rm"] = submit_job(client, grpo_with_reward_model(chats, jobs["rm_lora"]["id"]))
        jobs.update(finished(client, ids))
        refused["not_rm"] = client.post("/api/v1/jobs", json=grpo_with_reward_model(chats, jobs["grpo_rm"]["id"]))
        yield client, jobs, pairs_file, refused


def rewards(model, tokenizer, data_path) -> torch.Tensor:
    """Per pair: r(prompt + chosen) - r(prompt + rejected) under ``model``."""
    model.config.pad_token_id = tokenizer.pad_token_id  # the reward is read at the last non-pad token, as in training
    out = []
    with torch.no_grad():
        for _, row in iter_rows(data_path):
            pair = tokenize_pair(tokenizer, row)
            scores = [model(torch.tensor([pair["prompt_ids"] + pair[key]])).logits[0, 0]
                      for key in ("chosen_ids", "rejected_ids")]
            out.append(scores[0] - scores[1])
    return torch.stack(out)


def untrained(tiny_model_dir):
    """The reward model before training: the base with the score head the run started from (seed 42)."""
    from transformers import AutoModelForSequenceClassification, set_seed

    set_seed(42)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).eval()


def check_learned(client, job, trained, tiny_model_dir, pairs_file):
    assert job["config"]["seed"] == 42  # untrained() rebuilds the score head from this seed
    tokenizer = load_tokenizer(tiny_model_dir)
    before = rewards(untrained(tiny_model_dir), tokenizer, pairs_file)
    after = rewards(trained, tokenizer, pairs_file)
    print(f"{job['name']}: chosen above rejected on {int((before > 0).sum())}/{len(before)} pairs before, "
          f"{int((after > 0).sum())}/{len(after)} after; mean r(chosen) - r(rejected) {before.mean():.3f} -> "
          f"{after.mean():.3f}")
    assert int((after > 0).sum()) > int((before > 0).sum()), (before, after)
    assert (after > 0).all() and after.mean() > before.mean(), (before, after)
    rows = step_rows(client, job["id"])
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert {"accuracy", "margin"} <= set(rows[-1]) and rows[-1]["margin"] > rows[0]["margin"]
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_rm_lora_ranks_chosen_above_rejected_and_saves_adapter_with_the_head(runs, tiny_model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    client, jobs, pairs_file, _ = runs
    job = jobs["rm_lora"]
    assert job["output"] == "adapter" and result(job)["status"] == "succeeded"
    tensors = load_file(run_dir(job) / "adapter" / "adapter_model.safetensors")
    assert any("score" in name for name in tensors) and any("lora_B" in name for name in tensors)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    adapted = PeftModel.from_pretrained(base, run_dir(job) / "adapter").eval()
    check_learned(client, job, adapted, tiny_model_dir, pairs_file)


def test_rm_full_saves_a_sequence_classification_model(runs, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from backend.engine.merge import merge_adapter

    client, jobs, pairs_file, _ = runs
    job = jobs["rm_full"]
    assert job["output"] == "model" and result(job)["status"] == "succeeded"
    trained = AutoModelForSequenceClassification.from_pretrained(run_dir(job) / "model").eval()
    assert trained.config.num_labels == 1 and trained.config.architectures == ["LlamaForSequenceClassification"]
    check_learned(client, job, trained, tiny_model_dir, pairs_file)
    # resaved in another dtype it stays a sequence classifier
    resaved = AutoModelForSequenceClassification.from_pretrained(merge_adapter(run_dir(job), dtype="bf16",
                                                                               out_dir=tmp_path / "bf16"))
    assert resaved.dtype == torch.bfloat16 and resaved.config.num_labels == 1
    assert torch.equal(resaved.score.weight, trained.score.weight.to(torch.bfloat16))


def test_reward_model_is_not_chatted_with_but_downloads_and_merges_into_a_classifier(runs, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    client, jobs, pairs_file, _ = runs
    rm = jobs["rm_lora"]
    chat = {"job_id": rm["id"], "messages": [{"role": "user", "content": "Hi"}], "max_new_tokens": 4}
    for route in ("/api/v1/chat", "/api/v1/chat/stream"):
        resp = client.post(route, json=chat)
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["errors"][0]["loc"] == ["body", "job_id"]
        assert f"run {rm['id']} is a reward model (stage 'rm')" in body["message"]
        assert "cannot be chatted with" in body["message"] and '"name": "reward_model"' in body["hint"]
    resp = client.post("/v1/chat/completions", json={"model": rm["id"], "messages": chat["messages"]})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["param"] == "model" and "is a reward model" in resp.json()["error"]["message"]
    assert rm["id"] not in [m["id"] for m in client.get("/v1/models").json()["data"]]
    resp = client.post(f"/api/v1/jobs/{rm['id']}/export", json={"format": "gguf", "quantization": "f16"})
    assert resp.status_code == 422 and "cannot be exported to GGUF" in resp.json()["message"], resp.text

    adapter_zip_names(client, rm["id"])
    merged = AutoModelForSequenceClassification.from_pretrained(merge(client, rm["id"]), dtype=torch.float32).eval()
    assert merged.config.architectures == ["LlamaForSequenceClassification"] and merged.config.num_labels == 1
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    adapted = PeftModel.from_pretrained(base, run_dir(rm) / "adapter").eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    assert torch.allclose(rewards(merged, tokenizer, pairs_file), rewards(adapted, tokenizer, pairs_file), atol=1e-3)

    # Evaluate scores it on pairs, side by side with the model it started from; chat data is refused up front
    identity = next(d["id"] for d in client.get("/api/v1/datasets").json()["data"] if d["name"] == "identity")
    resp = client.post(f"/api/v1/jobs/{rm['id']}/evaluate", json={"dataset": identity})
    assert resp.status_code == 422 and "reward model" in resp.json()["message"], resp.text
    resp = client.post(f"/api/v1/jobs/{rm['id']}/evaluate", json={"dataset": rm["config"]["datasets"][0],
                                                                   "with_base": True})
    assert resp.status_code == 201, resp.text
    scored = resp.json()
    assert scored["pairs"] == scored["samples"] == scored["in_training"] == scored["base"]["pairs"] > 0
    assert 0 <= scored["pairwise_accuracy"] <= 1 and 0 <= scored["base"]["pairwise_accuracy"] <= 1
    assert scored["delta"]["mean_margin"] == pytest.approx(scored["mean_margin"] - scored["base"]["mean_margin"])


def test_evaluate_scores_pairwise_accuracy_of_the_run_and_of_its_untrained_start(runs, tiny_model_dir, tmp_path):
    """``backend.engine.evaluate`` with_base on the rm run (in-process): pairwise accuracy and mean margin of the
    reward model and of the model it started from (the base with the seed's head), on the pairs it trained on."""
    from backend.config import rundir
    from backend.engine.evaluate import evaluate

    _, jobs, _, _ = runs
    job = jobs["rm_lora"]
    pairs = Path(rundir.read_resolved_run(run_dir(job)).datasets[0].path)  # the registered data the run read
    metrics = evaluate(tmp_path / "out", pairs, run_dir=run_dir(job), with_base=True)
    before = rewards(untrained(tiny_model_dir), load_tokenizer(tiny_model_dir), pairs)
    assert metrics["pairs"] == metrics["samples"] == metrics["in_training"] == len(before)
    assert metrics["base"]["pairwise_accuracy"] == pytest.approx(float((before > 0).float().mean()))
    assert metrics["base"]["mean_margin"] == pytest.approx(float(before.mean()), abs=1e-4)
    assert metrics["pairwise_accuracy"] > metrics["base"]["pairwise_accuracy"]
    assert metrics["mean_margin"] > metrics["base"]["mean_margin"]
    assert metrics["delta"]["pairwise_accuracy"] == pytest.approx(
        metrics["pairwise_accuracy"] - metrics["base"]["pairwise_accuracy"])
    assert metrics["loss"] is None and metrics["predictions"] == 0  # a reward model scores, it does not generate
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(before) and all(r["in_training"] for r in rows)
    assert [r["base_correct"] for r in rows] == (before > 0).tolist()
    assert sum(r["correct"] for r in rows) / len(rows) == metrics["pairwise_accuracy"]


def test_grpo_with_the_reward_model_trains_and_logs_its_reward(runs):
    client, jobs, _, _ = runs
    job, rm_id = jobs["grpo_rm"], jobs["rm_lora"]["id"]
    assert job["output"] == "adapter" and result(job)["status"] == "succeeded"
    log = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"tail": 100_000}).json()["text"]
    assert f"reward_model: scoring replies with run {rm_id}" in log, log[-3000:]
    rows = step_rows(client, job["id"])
    assert [row["step"] for row in rows] == [1, 2]
    assert all("rewards/reward_model/mean" in row and "rewards/length/mean" in row for row in rows), rows
    assert len({row["rewards/reward_model/mean"] for row in rows}) == 2  # real, varying scores
    print("grpo_rm: rewards/reward_model/mean per step", [row["rewards/reward_model/mean"] for row in rows])
    # beta > 0: the KL to the reference (the base with the adapter switched off, equal to the policy before the
    # first update) is logged, and the Runs page draws it beside the reward of each function
    assert result(job)["reference_model"] == "base with the adapter switched off"
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[-1]["kl"] > 0, rows
    assert all({"reward_model", "length"} == set(s["rewards"]) for row in rows for s in row["samples"]), rows
    gradio_charts_of_a_real_grpo_run(rows)


def gradio_charts_of_a_real_grpo_run(rows: list[dict]) -> None:
    if importlib.util.find_spec("gradio") is None:
        return
    from app.pages.runs_charts import metrics_html

    html = metrics_html(rows, "en")
    assert re.findall(r'data-chart="(\w+)"', html)[:4] == ["loss", "reward", "kl", "completion_length"]
    assert re.findall(r'data-series="([^"]+)"', html.split('data-chart="reward"')[1].split("</figure>")[0]) == [
        "total (weighted)", "reward_model", "length"]


def test_grpo_lora_output_downloads_chats_and_merges(runs, tiny_model_dir):
    client, jobs, _, _ = runs
    job = jobs["grpo_rm"]
    adapter_zip_names(client, job["id"])
    assert_chats_with_its_weights(client, job["id"], "adapter", tiny_model_dir, run_dir(job) / "adapter")
    assert_merge_keeps_the_adapter(client, job, tiny_model_dir)


def problem(resp) -> tuple[list, str]:
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    return error["loc"], error["msg"]


def test_a_reward_model_reward_must_name_a_succeeded_rm_run(runs):
    client, jobs, _, refused = runs
    loc, msg = problem(refused["missing"])
    assert loc == ["body", "grpo", "rewards", 0, "run"]
    assert msg.startswith("grpo.rewards[0].run: no run with id 'job_0000000000'"), msg
    loc, msg = problem(refused["unfinished"])  # queued or running
    assert loc == ["body", "grpo", "rewards", 0, "run"]
    assert "a reward model must come from a succeeded stage-rm run" in msg, msg
    loc, msg = problem(refused["not_rm"])
    assert loc == ["body", "grpo", "rewards", 0, "run"]
    assert f"run {jobs['grpo_rm']['id']} is stage 'grpo', not a reward model" in msg, msg
    assert len(client.get("/api/v1/jobs").json()["data"]) == 3  # nothing refused was stored
