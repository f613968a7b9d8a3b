from pathlib import Path

import pytest

from backend.config.schema import RunConfig
from backend.fsio import read_yaml

PRESETS = sorted((Path(__file__).resolve().parents[2] / "backend" / "config" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_presets_are_valid_and_say_how_to_run_them(path):
    assert path.read_text().splitlines()[0] == f"# tunesmith train backend/config/presets/{path.name}"
    RunConfig.model_validate(read_yaml(path))
