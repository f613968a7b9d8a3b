"""The Train page's dataset mixture: the table follows the selection, its cells become `datasets` entries, and
the preview through the real API accepts a weighted mixture with a validation dataset (or says why not)."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio")

from app.form import build_config, mixture_entries, mixture_rows, validate_config  # noqa: E402
from app.pages.train import launch_preview_markdown  # noqa: E402
from app.pages.train_data import dataset_choice_updates  # noqa: E402
from tests.tiny_model import build_tiny_model  # noqa: E402

NAMES = {"ds_a": "alpaca", "ds_b": "chat"}


def test_the_table_follows_the_selection_and_keeps_typed_cells():
    table = mixture_rows(["ds_a"], NAMES, None)
    assert table == [["ds_a", "alpaca", None, None]]
    table[0][2:4] = [0.7, 100]
    assert mixture_rows(["ds_a", "ds_b"], NAMES, table) == [["ds_a", "alpaca", 0.7, 100], ["ds_b", "chat", None, None]]
    assert mixture_rows(["ds_b"], NAMES, table) == [["ds_b", "chat", None, None]]
    assert mixture_rows(["ds_x"], NAMES, None) == [["ds_x", "ds_x", None, None]]  # unknown name: the id


@pytest.mark.parametrize("table,expected", [
    (None, ["ds_a", "ds_b"]),
    ([["ds_a", "alpaca", "", ""], ["ds_b", "chat", None, float("nan")]], ["ds_a", "ds_b"]),  # blank = simple form
    ([["ds_a", "alpaca", None, 0], ["ds_b", "chat", None, None]], ["ds_a", "ds_b"]),  # cap 0 = no cap
    ([["ds_a", "alpaca", 0.7, 500.0], ["ds_b", "chat", "0.3", ""]],
     [{"id": "ds_a", "weight": 0.7, "max_samples": 500}, {"id": "ds_b", "weight": 0.3}]),
    ([["ds_a", "alpaca", None, 50]], [{"id": "ds_a", "max_samples": 50}, {"id": "ds_b"}]),
    ([["ds_a", "alpaca", 1, None], ["ds_gone", "old", 5, None]], [{"id": "ds_a", "weight": 1.0}, {"id": "ds_b"}]),
])
def test_table_cells_become_dataset_entries(table, expected):
    assert mixture_entries(["ds_a", "ds_b"], table) == expected


def test_form_values_with_a_mixture_make_a_valid_config_or_name_the_problem():
    values = {"base_model": "m", "datasets": ["ds_a", "ds_b"], "method": "lora", "mixture_size": "300",
              "val_datasets": ["ds_v"], "val_size": 0,
              "datasets.mixture": [["ds_a", "alpaca", 2, None], ["ds_b", "chat", 1, 40]]}
    config = build_config(values)
    assert config["datasets"] == [{"id": "ds_a", "weight": 2.0}, {"id": "ds_b", "weight": 1.0, "max_samples": 40}]
    assert config["mixture_size"] == 300 and config["val_datasets"] == ["ds_v"] and "datasets.mixture" not in config
    assert validate_config(config) == []
    missing = build_config({**values, "datasets.mixture": [["ds_a", "alpaca", 2, None], ["ds_b", "chat", None, 40]]})
    assert any("'ds_b' has no weight while others do" in p for p in validate_config(missing))
    both = build_config({**values, "val_size": 0.1})
    assert any(p.startswith("val_datasets:") and "both set" in p for p in validate_config(both))
    typo = build_config({**values, "datasets.mixture": [["ds_a", "alpaca", "lots", None], ["ds_b", "chat", 1, None]]})
    assert any(p.startswith("datasets.0.entry.weight") for p in validate_config(typo))


def test_refreshed_choices_keep_what_still_exists():
    choices = [("alpaca · 16 rows", "ds_a"), ("chat · 4 rows · built-in", "ds_b")]
    table = [["ds_a", "alpaca", 3, None], ["ds_gone", "old", 1, None]]
    datasets, val, names, rows = dataset_choice_updates(choices, ["ds_a", "ds_gone"], ["ds_b", "ds_gone"], table)
    assert datasets.value == ["ds_a"] and val.value == ["ds_b"] and datasets.choices == val.choices
    assert names == {"ds_a": "alpaca", "ds_b": "chat"} and rows == [["ds_a", "alpaca", 3, None]]


def test_preview_of_a_weighted_mixture_through_the_api(client, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny-llama")
    builtins = {d["name"]: d["id"] for d in client.list_datasets()}
    identity, other = builtins["identity"], next(i for n, i in builtins.items() if n != "identity")
    config = build_config({"base_model": str(model_dir), "datasets": [identity], "method": "lora",
                           "val_datasets": [other], "datasets.mixture": [[identity, "identity", 1, 20]]})
    assert config["datasets"] == [{"id": identity, "weight": 1.0, "max_samples": 20}]
    assert launch_preview_markdown(client, config, "en").startswith("✓ Valid run config")
    clash = {**config, "val_datasets": [identity]}
    text = launch_preview_markdown(client, clash, "en")
    assert "would refuse" in text and "both a training and a validation dataset" in text
