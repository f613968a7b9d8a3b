"""Stages dpo and kto, data side: a preference row becomes prompt/chosen/rejected token ids with the boundaries our
chat-template rendering gives (the same tokens SFT trains on), long rows keep the prompt's end, KTO unpairs
preference rows, and mixtures, caps and held-out shares work as for SFT."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.engine.chat_render import render
from backend.engine.data import IGNORE_INDEX, tokenize_conversation
from backend.engine.failures import DataError
from backend.engine.model import load_tokenizer
from backend.engine.preference import (
    sequence_lengths,
    tokenize_pair,
    tokenize_unpaired,
    truncate,
)
from backend.engine.rows import parse_row
from backend.engine.stages import build_datasets
from tests.engine.tiny_runs import conversations, write_jsonl

SYSTEM = {"role": "system", "content": "Answer briefly."}
PAIR = {"messages": [SYSTEM, {"role": "user", "content": "What is two plus two?"},
                     {"role": "assistant", "content": "Four."}, {"role": "user", "content": "And three plus three?"},
                     {"role": "assistant", "content": "Six."}],
        "rejected": {"role": "assistant", "content": "Seven, surely."}}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def pairs(n: int, tag: str) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"{tag} question {i}?"},
                          {"role": "assistant", "content": f"{tag} good answer {i}."}],
             "rejected": {"role": "assistant", "content": f"{tag} bad answer {i}."}} for i in range(n)]


def run_for(tmp_path, stage: str, datasets: list[tuple[str, list[dict], float | None]], **fields) -> ResolvedRun:
    refs = [DatasetRef(id=name, name=name, path=str(write_jsonl(tmp_path / f"{name}.jsonl", rows)),
                       num_rows=len(rows), weight=weight) for name, rows, weight in datasets]
    config = RunConfig.model_validate({"base_model": "m", "datasets": [
        {"id": r.id, "weight": r.weight} if r.weight is not None else r.id for r in refs],
        "stage": stage, "cutoff_len": 256, **fields})
    return ResolvedRun(run_id="r", config=config, model_path="m", datasets=refs)


def test_a_pair_splits_at_the_last_reply_and_decodes_to_prompt_chosen_rejected(tokenizer):
    row = parse_row(json.dumps(PAIR), "test")
    pair = tokenize_pair(tokenizer, row)
    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=False)

    prompt_text = render(tokenizer, PAIR["messages"][:-1], add_generation_prompt=True)
    assert decode(pair["prompt_ids"]) == prompt_text  # system, first exchange, question, generation prompt
    assert prompt_text.endswith("And three plus three?<|im_end|>\n<|im_start|>assistant\n")
    assert decode(pair["chosen_ids"]) == "Six.<|im_end|>"
    assert decode(pair["rejected_ids"]) == "Seven, surely.<|im_end|>"
    # the very tokens SFT uses: prompt + chosen is a prefix of the SFT example, and the chosen reply is its last
    # stretch of trained tokens
    sft = tokenize_conversation(tokenizer, PAIR["messages"])
    whole = pair["prompt_ids"] + pair["chosen_ids"]
    assert sft["input_ids"][: len(whole)] == whole
    assert sft["labels"][len(pair["prompt_ids"]): len(whole)] == pair["chosen_ids"]
    assert sft["labels"][len(pair["prompt_ids"]) - 1] == IGNORE_INDEX


def test_truncation_keeps_the_prompt_end_and_the_reply_start():
    prompt, replies = list(range(100)), [list(range(500, 540)), list(range(600, 610))]
    assert truncate(prompt, replies, 200) == (prompt, replies, False)
    kept, (chosen, rejected), cut = truncate(prompt, replies, 128)  # the prompt gives way: its end survives
    assert cut and kept == list(range(12, 100)) and (chosen, rejected) == tuple(replies)
    kept, (chosen, rejected), _ = truncate(prompt, replies, 64)  # the prompt keeps half, the replies their start
    assert kept == list(range(68, 100)) and chosen == list(range(500, 532)) and rejected == replies[1]


def test_kto_unpairs_preference_rows_and_keeps_undesirable_kto_rows(tokenizer):
    pair = parse_row(json.dumps(PAIR), "test")
    chosen, rejected = tokenize_unpaired(tokenizer, pair)
    assert (chosen["label"], rejected["label"]) == (True, False)
    assert chosen["prompt_ids"] == rejected["prompt_ids"]
    assert tokenizer.decode(rejected["completion_ids"]) == "Seven, surely.<|im_end|>"
    bad = parse_row('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],'
                    ' "label": false}', "test")
    (example,) = tokenize_unpaired(tokenizer, bad)
    assert example["label"] is False and tokenizer.decode(example["completion_ids"]) == "Go away.<|im_end|>"


def test_dpo_mixture_with_weights_and_held_out_share(tmp_path, tokenizer):
    run = run_for(tmp_path, "dpo", [("a", pairs(8, "a"), 1.0), ("b", pairs(4, "b"), 1.0)], val_size=0.25)
    train, held, stats = build_datasets(run, tokenizer)
    # held out before mixing: a 2 of 8, b 1 of 4; equal weights without repeats: 3 + 3 pairs (b runs out first)
    assert (len(train), len(held)) == (6, 3)
    assert set(train.column_names) == {"prompt_ids", "chosen_ids", "rejected_ids"}
    texts = [tokenizer.decode(ids) for ids in train["chosen_ids"]]
    assert sum(t.startswith("a ") for t in texts) == 3 and sum(t.startswith("b ") for t in texts) == 3
    held_texts = {tokenizer.decode(ids) for ids in held["chosen_ids"]}
    assert not held_texts & set(texts)  # never trained on a held-out pair
    described = stats.describe()
    assert "(a) (preference): 8 rows read, 2 held out, weight 1 (50%): 3 drawn -> 3 train pairs + 2 eval" in described
    assert "(b) (preference): 4 rows read, 1 held out, weight 1 (50%): 3 drawn -> 3 train pairs + 1 eval" in described
    lengths, per_example = sequence_lengths(train)
    assert per_example == 2 and lengths == [len(p) + max(len(c), len(r)) for p, c, r in
                                            zip(train["prompt_ids"], train["chosen_ids"], train["rejected_ids"])]


def test_kto_reads_both_labels_and_shuffles_unpaired_pairs(tmp_path, tokenizer):
    kto_rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"r{i}"}],
                 "label": i % 3 != 0} for i in range(6)]
    run = run_for(tmp_path, "kto", [("k", kto_rows, None), ("p", pairs(5, "p"), None)], per_device_batch_size=2)
    train, _, stats = build_datasets(run, tokenizer)
    assert len(train) == 6 + 10 and sum(train["label"]) == 4 + 5  # label-false rows are kept, pairs give two
    assert "labelled false set aside" not in stats.describe()
    assert "each pair gives a desirable (chosen) and an undesirable (rejected) example" in stats.describe()
    # shuffled: the two halves of a pair are not all neighbours (trl pairs neighbours for the KL term)
    prompts = [tuple(ids) for ids in train["prompt_ids"]]
    assert sum(a == b for a, b in pairwise(prompts)) < 5


@pytest.mark.parametrize("stage,rows,needle", [
    ("dpo", conversations(4), "stage dpo trains on preference rows"),
    ("kto", conversations(4), "stage kto trains on KTO rows"),
    ("dpo", [{"text": "raw text"}], "stage dpo trains on conversations"),
])
def test_wrong_kind_of_rows_is_a_data_error(tmp_path, tokenizer, stage, rows, needle):
    run = run_for(tmp_path, stage, [("d", rows, None)], per_device_batch_size=2)
    with pytest.raises(DataError, match=needle) as err:
        build_datasets(run, tokenizer)
    assert "preference" in err.value.hint or "stage pt" in err.value.hint
