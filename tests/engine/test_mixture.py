"""Dataset mixtures and validation data, in-process on the tiny tokenizer: which rows of which dataset a run
trains and evaluates on, the per-dataset counts in the log, and determinism by seed."""

from __future__ import annotations

import re

import pytest

from backend.config.schema import DatasetRef, ResolvedRun, RunConfig
from backend.engine.data import DataStats
from backend.engine.failures import DataError
from backend.engine.mixture import draw, mix, mixture_counts
from backend.engine.model import load_tokenizer
from backend.engine.stages import build_datasets, build_examples
from tests.engine.tiny_runs import write_jsonl


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def chat_rows(tag: str, n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"{tag} question {i}"},
                          {"role": "assistant", "content": f"{tag}{i}"}]} for i in range(n)]


def make_run(tmp_path, model_dir, sizes: dict[str, int], weights: dict | None = None, caps: dict | None = None,
             val: dict[str, int] | None = None, **config) -> ResolvedRun:
    """A run over datasets named by tag with ``sizes[tag]`` rows each, answers ``<tag><i>``."""
    weights, caps, val = weights or {}, caps or {}, val or {}

    def ref(tag, n, **extra):
        path = write_jsonl(tmp_path / f"{tag}.jsonl", chat_rows(tag, n))
        return DatasetRef(id=f"ds_{tag}", name=tag, path=str(path), num_rows=n, **extra)

    refs = [ref(tag, n, weight=weights.get(tag), max_samples=caps.get(tag)) for tag, n in sizes.items()]
    entries = [{"id": r.id, "weight": r.weight} if weights else r.id for r in refs]
    return ResolvedRun(
        run_id="mix",
        config=RunConfig(base_model=str(model_dir), datasets=entries, val_datasets=[f"ds_{t}" for t in val],
                         **config),
        model_path=str(model_dir),
        datasets=refs,
        val_datasets=[ref(tag, n) for tag, n in val.items()],
    )


def answers(tokenizer, examples) -> list[str]:
    """The trained text of each example, end-of-turn token removed: e.g. 'a3'."""
    out = []
    for ex in examples:
        ids = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        out.append(tokenizer.decode(ids).replace("<|im_end|>", ""))
    return out


def tags(texts: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in texts:
        tag = re.match(r"[a-z]+", text).group()
        counts[tag] = counts.get(tag, 0) + 1
    return counts


# -- the pure mixture arithmetic ------------------------------------------------------------------------------
def test_counts_follow_the_weights_and_the_first_dataset_to_run_out_sets_the_size():
    # shares 0.7 / 0.3: a (100 rows) could feed 142, b (30 rows) only 100 -> total 100
    assert mixture_counts([100, 30], [0.7, 0.3]) == [70, 30]
    assert mixture_counts([100, 30], [7, 3]) == [70, 30]  # weights are relative
    assert mixture_counts([10, 10, 10], [1, 1, 1]) == [10, 10, 10]
    assert mixture_counts([10, 5], [1, 0]) == [10, 0]  # weight 0 leaves a dataset out
    counts = mixture_counts([50, 50, 50], [1, 1, 1], size=10)  # 3.33 each: largest remainder, earliest first
    assert counts == [4, 3, 3] and sum(counts) == 10
    assert mixture_counts([4, 100], [0.5, 0.5], size=20) == [10, 10]  # a repeats: 2 passes + 2


def test_draw_repeats_only_in_whole_passes_and_is_deterministic():
    rows = list(range(5))
    picked = draw(rows, 12, "s")
    assert picked[:10] == rows * 2 and len(set(picked[10:])) == 2  # 2 whole passes + 2 distinct rows
    assert draw(rows, 12, "s") == picked
    assert draw(rows, 3, "s") == sorted(draw(rows, 3, "s")) and len(set(draw(rows, 3, "s"))) == 3
    assert {tuple(draw(list(range(100)), 10, f"seed{i}")) for i in range(5)}.__len__() > 1


def test_mix_without_weights_concatenates_in_order():
    mixed, counts = mix([["a0", "a1"], ["b0"]], None, None, seed=1)
    assert mixed == [(0, "a0"), (0, "a1"), (1, "b0")] and counts == [2, 1]


# -- whole runs, in-process -----------------------------------------------------------------------------------
def test_weighted_mixture_takes_each_dataset_by_its_share(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 40, "b": 12}, weights={"a": 0.7, "b": 0.3}, seed=3)
    train, evaluation, stats = build_datasets(run, tokenizer)
    texts = answers(tokenizer, train)
    # b (12 rows at 30%) runs out first: 40 examples in all, 28 from a, every b row exactly once
    assert tags(texts) == {"a": 28, "b": 12} and evaluation is None
    assert sorted(t for t in texts if t.startswith("b")) == sorted(f"b{i}" for i in range(12))
    assert len(set(texts)) == 40  # no repeats
    log = stats.describe()
    assert "dataset 'a' (ds_a) (chat): 40 rows read, weight 0.7 (70%): 28 drawn -> 28 train examples" in log
    assert "dataset 'b' (ds_b) (chat): 12 rows read, weight 0.3 (30%): 12 drawn -> 12 train examples" in log


def test_the_mixture_is_deterministic_by_seed(tmp_path, tiny_model_dir, tokenizer):
    def picked(seed):
        run = make_run(tmp_path, tiny_model_dir, {"a": 40, "b": 12}, weights={"a": 1, "b": 1}, seed=seed)
        return answers(tokenizer, build_datasets(run, tokenizer)[0])

    first = picked(7)
    assert picked(7) == first
    assert picked(8) != first and sorted(picked(8)) != sorted(first)  # other rows of a, not only another order
    assert tags(first) == {"a": 12, "b": 12}


def test_mixture_size_repeats_the_dataset_that_runs_short(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 30, "b": 4}, weights={"a": 1, "b": 1}, mixture_size=20)
    texts = answers(tokenizer, build_datasets(run, tokenizer)[0])
    b = [t for t in texts if t.startswith("b")]
    assert tags(texts) == {"a": 10, "b": 10}
    assert sorted(set(b)) == ["b0", "b1", "b2", "b3"] and all(2 <= b.count(t) <= 3 for t in set(b))


def test_per_dataset_caps_take_the_first_rows_and_override_the_global_cap(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 20, "b": 20}, caps={"a": 3}, max_samples=5)
    texts = answers(tokenizer, build_datasets(run, tokenizer)[0])
    assert texts == ["a0", "a1", "a2", "b0", "b1", "b2", "b3", "b4"]  # no weights: concatenated in order


def test_val_size_holds_out_rows_of_each_dataset_before_mixing(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 20, "b": 10}, weights={"a": 1, "b": 1}, val_size=0.2,
                   mixture_size=40, seed=5)
    stats = DataStats()
    train, held = build_examples(run, tokenizer, stats)
    train_texts, held_texts = answers(tokenizer, train), answers(tokenizer, held)
    assert tags(held_texts) == {"a": 4, "b": 2}
    assert not set(held_texts) & set(train_texts)  # b repeats in training, its held-out rows never do
    assert tags(train_texts) == {"a": 20, "b": 20} and len(set(t for t in train_texts if t[0] == "b")) == 8
    assert "4 held out" in stats.describe() and "20 train examples + 4 eval" in stats.describe()


def test_validation_datasets_give_the_eval_set(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 8}, val={"v": 3})
    train, evaluation, stats = build_datasets(run, tokenizer)
    assert answers(tokenizer, train) == [f"a{i}" for i in range(8)]
    assert answers(tokenizer, evaluation) == ["v0", "v1", "v2"]
    assert (stats.train, stats.eval) == (8, 3)
    assert "validation dataset 'v' (ds_v) (chat): 3 rows read -> 3 eval examples" in stats.describe()


def test_a_weighted_dataset_with_no_usable_rows_is_refused(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 5, "b": 0}, weights={"a": 1, "b": 1})
    with pytest.raises(DataError, match="dataset 'b' .* has a weight but no usable rows") as err:
        build_datasets(run, tokenizer)
    assert "weight 0" in err.value.hint


def test_pretraining_mixes_documents_and_packs_the_validation_documents_apart(tmp_path, tiny_model_dir, tokenizer):
    run = make_run(tmp_path, tiny_model_dir, {"a": 6, "b": 6}, weights={"a": 2, "b": 1}, val={"v": 2},
                   stage="pt", cutoff_len=4096)
    train, evaluation, stats = build_datasets(run, tokenizer)
    (block,) = list(train)
    (held,) = list(evaluation)
    assert block["labels"] == block["input_ids"] and held["labels"] == held["input_ids"]
    docs = tokenizer.decode(block["input_ids"]).split("<|im_end|>")[:-1]
    assert len(docs) == 9 and sum(d.startswith("a question") for d in docs) == 6  # a: 6 rows at 2/3 -> 9 in all
    assert tokenizer.decode(held["input_ids"]) == "v question 0\n\nv0<|im_end|>v question 1\n\nv1<|im_end|>"
    assert "-> 6 train documents" in stats.describe() and "-> 2 eval documents" in stats.describe()
