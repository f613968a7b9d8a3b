"""Evaluate & predict on the tiny model, in-process: the loss is the mean per-token NLL of the trained tokens (checked
by hand), predictions split each conversation at its last assistant turn, and the text metrics score by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.engine.data import IGNORE_INDEX, tokenize_conversation
from backend.engine.evaluate import (
    evaluate,
    lcs_length,
    loss_examples,
    prompt_and_reference,
    rouge_l,
    rouge_tokens,
    text_scores,
    token_nll,
)
from backend.engine.model import load_tokenizer
from backend.engine.rows import Row
from tests.engine.tiny_runs import conversations, make_run_dir, write_jsonl

ROW = {"messages": [{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "What is two plus two?"},
                    {"role": "assistant", "content": "Two plus two is four."}]}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def nll_by_hand(model, example) -> tuple[float, int]:
    """Sum over trained positions t of -log p(token_t | tokens before t), one position at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([example["input_ids"]])).logits[0].double()
    total, count = 0.0, 0
    for t in range(1, len(example["input_ids"])):
        if example["labels"][t] != IGNORE_INDEX:
            total -= torch.log_softmax(logits[t - 1], dim=-1)[example["labels"][t]].item()
            count += 1
    return total, count


def test_loss_is_the_mean_nll_of_the_reply_tokens(tmp_path, tiny_model_dir, tokenizer, model):
    data = write_jsonl(tmp_path / "one.jsonl", [ROW])
    metrics = evaluate(tmp_path / "out", data, model_dir=tiny_model_dir, max_new_tokens=4)

    example = tokenize_conversation(tokenizer, ROW["messages"])
    trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Two plus two is four.<|im_end|>"  # the training mask: the reply only
    total, count = nll_by_hand(model, example)
    assert metrics["loss_tokens"] == count == len(trained)
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    assert metrics["samples"] == metrics["predictions"] == 1 and metrics["adapter"] is None
    assert (metrics["device"], metrics["dtype"], metrics["cutoff_len"]) == ("cpu", "float32", 1024)

    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    [prediction] = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert prediction["prompt"] == ROW["messages"][:2] and prediction["reference"] == "Two plus two is four."
    assert isinstance(prediction["prediction"], str) and prediction["rouge_l"] == pytest.approx(
        rouge_l(prediction["reference"], prediction["prediction"]), abs=1e-6)


def test_padded_batches_score_each_example_as_if_alone(tokenizer, model):
    rows = [Row(messages=r["messages"]) for r in conversations(6)]
    examples, truncated = loss_examples(tokenizer, rows, cutoff_len=1024)
    assert len(examples) == 6 and truncated == 0
    assert len({len(e["input_ids"]) for e in examples}) > 1  # different lengths: the batch is padded
    batched = token_nll(model, examples, tokenizer.pad_token_id)
    alone = [nll_by_hand(model, e) for e in examples]
    assert batched[1] == sum(c for _, c in alone)
    assert batched[0] == pytest.approx(sum(t for t, _ in alone), rel=1e-5)


def test_cutoff_truncates_like_training_and_drops_rows_left_without_reply(tokenizer):
    rows = [Row(messages=ROW["messages"])]
    prompt_len = len(tokenize_conversation(tokenizer, ROW["messages"][:2] + [{"role": "assistant", "content": ""}])
                     ["input_ids"])
    examples, truncated = loss_examples(tokenizer, rows, cutoff_len=prompt_len - 4)
    assert (examples, truncated) == ([], 1)


def test_a_run_is_scored_with_its_adapter_on_its_base(tmp_path, tiny_model_dir, model):
    from peft import LoraConfig, get_peft_model

    run_dir = make_run_dir(tmp_path, tiny_model_dir)  # cutoff_len 64
    torch.manual_seed(1)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)  # a LoRA that changes the outputs
    peft_model.save_pretrained(run_dir / "adapter")
    data = write_jsonl(tmp_path / "one.jsonl", [ROW])

    tuned = evaluate(tmp_path / "tuned", data, run_dir=run_dir, max_new_tokens=2)
    base = evaluate(tmp_path / "base", data, model_dir=tiny_model_dir, max_new_tokens=2)
    assert tuned["adapter"] == str((run_dir / "adapter").resolve()) and tuned["cutoff_len"] == 64
    assert tuned["model"] == str(tiny_model_dir) and base["adapter"] is None
    expected = nll_by_hand(peft_model.eval(), tokenize_conversation(load_tokenizer(tiny_model_dir), ROW["messages"]))
    assert tuned["loss"] == pytest.approx(expected[0] / expected[1], rel=1e-5)
    assert abs(tuned["loss"] - base["loss"]) > 1e-3


def test_rows_without_a_prompt_get_no_prediction(tokenizer):
    assert prompt_and_reference(tokenizer, Row(messages=[], text="Plain text.")) == "raw text"
    assert prompt_and_reference(tokenizer, Row(messages=[{"role": "assistant", "content": "Hi"}])) == \
        "no assistant turn after a prompt"
    tool_row = Row(messages=[{"role": "user", "content": "Weather in Paris?"},
                             {"role": "assistant", "content": "",
                              "tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]}])
    prompt, reference = prompt_and_reference(tokenizer, tool_row)  # no native tools: written as training renders it
    assert prompt == [{"role": "user", "content": "Weather in Paris?"}]
    assert reference == '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>'


def test_a_perfect_prediction_scores_one():
    references = ["Two plus two is four.", "Paris is the capital of France."]
    scores = text_scores(references, list(references))
    assert scores["exact_match"] == 1 and scores["rouge_l"] == 1
    assert scores["bleu"] == pytest.approx(1.0)
    assert text_scores([], []) == {"exact_match": None, "rouge_l": None, "bleu": None}


def test_exact_match_ignores_only_whitespace_differences():
    scores = text_scores(["Paris.", "Paris.", "Paris."], ["  Paris.\n", "paris.", "Paris"])
    assert scores["exact_match"] == pytest.approx(1 / 3)


def test_rouge_l_on_hand_worked_pairs():
    # LCS of "police killed the gunman" / "police kill the gunman" is "police the gunman": P = R = 3/4
    assert rouge_l("police killed the gunman", "police kill the gunman") == pytest.approx(0.75)
    # reference 4 tokens, prediction 2, LCS 2: P = 1, R = 1/2, F1 = 2/3
    assert rouge_l("The quick brown fox", "quick fox") == pytest.approx(2 / 3)
    # order matters: LCS of (a b c d) and (d c b a) is 1: P = R = 1/4
    assert rouge_l("a b c d", "d c b a") == pytest.approx(0.25)
    assert rouge_l("", "") == 1.0 and rouge_l("something", "") == 0.0 and rouge_l("x y", "z") == 0.0
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (BCBA)
    assert rouge_tokens("Hello, World! 你好") == ["hello", "world", "你", "好"]
