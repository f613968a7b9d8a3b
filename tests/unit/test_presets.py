from pathlib import Path

import pytest

from backend.config.schema import RunConfig
from backend.fsio import read_yaml

PRESETS = sorted((Path(__file__).resolve().parents[2] / "backend" / "config" / "presets").glob("*.yaml"))
FLAT_PREFIXES = ("lora_", "qlora_", "freeze_", "pref_", "kto_")


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_presets_are_valid_and_say_how_to_run_them(path):
    assert path.read_text().splitlines()[0] == f"# tunesmith train backend/config/presets/{path.name}"
    RunConfig.model_validate(read_yaml(path))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_presets_use_the_nested_form(path):
    """The presets are what people copy: method settings under ``method``, preference ones under ``preference``."""
    raw = read_yaml(path)
    assert isinstance(raw["method"], dict) and "name" in raw["method"]
    assert not [key for key in raw if key.startswith(FLAT_PREFIXES)]
