"""Base models the studio can train: HF-format directories under the models root, plus local paths.

Reads only ``config.json`` (no torch, no transformers), so the web process stays light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from backend.local_paths import check_client_path
from backend.settings import BUNDLED_MODEL_ID, Settings

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf")
# Written by backend.model_download into a model it fetched (what, from where); it stays as the model's provenance.
SOURCE_FILE = ".tunesmith-download.json"


@dataclass
class ModelInfo:
    id: str
    path: str
    bundled: bool
    model_type: str | None
    architecture: str | None
    size_bytes: int
    repo_id: str | None = None  # the hub model it was downloaded from (backend.model_download), else None

    def to_dict(self) -> dict:
        return asdict(self)


def inspect_model_dir(path: Path, model_id: str | None = None) -> ModelInfo | None:
    """ModelInfo for an HF-format directory (config.json + weights), else None."""
    config_path = path / "config.json"
    if not config_path.is_file():
        return None
    weights = [f for pattern in WEIGHT_PATTERNS for f in path.glob(pattern)]
    if not weights:
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    archs = config.get("architectures") or [None]
    return ModelInfo(
        id=model_id or path.name,
        path=str(path.resolve()),
        bundled=path.name == BUNDLED_MODEL_ID,
        model_type=config.get("model_type"),
        architecture=archs[0],
        size_bytes=sum(f.stat().st_size for f in weights),
        repo_id=downloaded_from(path),
    )


def downloaded_from(path: Path) -> str | None:
    """The hub repository a downloaded model came from, read from its download record; None for other models."""
    try:
        record = json.loads((path / SOURCE_FILE).read_text(encoding="utf-8"))
        repo_id = record["plan"]["repo_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return repo_id if isinstance(repo_id, str) else None


def list_models(settings: Settings) -> list[ModelInfo]:
    root = settings.models_dir
    if not root.is_dir():
        return []
    models = [info for child in sorted(root.iterdir()) if child.is_dir() and not child.name.startswith(".")
              if (info := inspect_model_dir(child)) is not None]
    models.sort(key=lambda m: (not m.bundled, m.id.lower()))
    return models


def resolve_model(settings: Settings, ref: str, loc: tuple[str, ...] = ("body", "model")) -> ModelInfo | None:
    """A model id from :func:`list_models`, or an absolute path to any local HF-format model directory.
    A ``~`` path is refused (422 at ``loc``), not expanded: see backend/local_paths.py."""
    for info in list_models(settings):
        if info.id == ref:
            return info
    path = Path(check_client_path(ref, loc))
    if path.is_absolute() and path.is_dir():
        return inspect_model_dir(path, model_id=str(path))
    return None
