"""Built-in run-config presets (``backend/config/presets/*.yaml``), so the UI can start a run from one.

A preset's first comment line is the command that runs it, the second says what it does; the rest of the file
is a run config (flat ``lora_rank``-style keys are fine: RunConfig folds them). Read from disk on each request.
"""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.errors import error_responses
from backend.errors import NotFound

PRESETS_DIR = Path(__file__).resolve().parents[2] / "config" / "presets"

router = APIRouter(prefix="/presets", tags=["presets"])


class PresetPublic(BaseModel):
    name: str = Field(description="File name without .yaml, e.g. identity_lora.")
    description: str = Field(description="What the preset does (its second comment line).")
    command: str = Field(description="The command that runs it (its first comment line).")
    config: dict[str, Any] = Field(description="The run config, as written in the file.")


class PresetsPublic(BaseModel):
    data: list[PresetPublic]
    count: int


def read_preset(path: Path) -> PresetPublic:
    """One preset file: its header comments and its config."""
    text = path.read_text(encoding="utf-8")
    header = [line.lstrip("#").strip() for line in takewhile(lambda text_line: text_line.startswith("#"), text.splitlines())]
    config = yaml.safe_load(text) or {}
    if not isinstance(config, dict):
        raise ValueError(f"preset {path.name} is not a YAML mapping of run-config fields")
    return PresetPublic(name=path.stem, command=header[0] if header else "",
                        description=header[1] if len(header) > 1 else "", config=config)


def list_presets(folder: Path = PRESETS_DIR) -> list[PresetPublic]:
    return [read_preset(path) for path in sorted(folder.glob("*.yaml"))]


@router.get("", response_model=PresetsPublic)
def get_presets() -> PresetsPublic:
    """Every built-in preset: name, description, the command that runs it, and its run config."""
    data = list_presets()
    return PresetsPublic(data=data, count=len(data))


@router.get("/{name}", response_model=PresetPublic, responses=error_responses(NotFound))
def get_preset(name: str) -> PresetPublic:
    path = PRESETS_DIR / f"{name}.yaml"
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        known = ", ".join(p.name for p in list_presets()) or "none"
        raise NotFound(f"no preset named {name!r}; available: {known}", loc=("path", "name"))
    return read_preset(path)
