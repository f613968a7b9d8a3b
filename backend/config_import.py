"""Users' config files into run configs for this studio: a Tunesmith run config (partial, older, flat) or a
LLaMA-Factory training YAML, resolved against this studio's models and datasets. Used by ``/api/v1/configs/*``
and ``tunesmith train``; the rules themselves are pure (``backend.config.normalize``,
``backend.config.llamafactory``), this module only plugs in the model catalog and the dataset registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from backend import catalog
from backend.config.llamafactory import is_llamafactory_config, map_llamafactory_args
from backend.config.normalize import (
    ConfigWarning,
    NormalizedConfig,
    ResolvedDataset,
    normalize_config,
)
from backend.config.schema import RunConfig
from backend.datasets.registry import DatasetRegistry
from backend.errors import Invalid
from backend.settings import Settings

ConfigFormat = Literal["tunesmith", "llamafactory"]


@dataclass(frozen=True)
class StudioCatalog:
    """:class:`backend.config.normalize.StudioRefs` over this studio's model catalog and dataset registry."""

    settings: Settings
    registry: DatasetRegistry

    def resolve_model(self, ref: str) -> str | None:
        """A model id or absolute path; a hub id (``org/name``) matches a model folder ``org--name`` (how
        downloaded models are kept) or ``name``."""
        info = catalog.resolve_model(self.settings, ref)
        parts = PurePosixPath(ref).parts
        if info is None and len(parts) == 2 and not ref.startswith("/"):
            info = (catalog.resolve_model(self.settings, "--".join(parts))
                    or catalog.resolve_model(self.settings, parts[1]))
        return info.id if info else None

    def resolve_dataset(self, ref: str) -> ResolvedDataset | None:
        record = self.registry.get(ref)
        if record is None:
            return None
        return ResolvedDataset(ref=ref, id=record.id, name=record.name, format=record.format)


@dataclass
class ImportedConfig:
    normalized: NormalizedConfig
    format: ConfigFormat
    warnings: list[ConfigWarning]  # the LF mapping's, then normalizing's


def import_config(data: dict[str, Any], refs: StudioCatalog, fmt: ConfigFormat | None = None) -> ImportedConfig:
    """``data`` (a file's top-level mapping) as a config for this studio; ``fmt`` None = tell the kinds apart by
    the names only each uses."""
    fmt = fmt or ("llamafactory" if is_llamafactory_config(data) else "tunesmith")
    mapped = map_llamafactory_args(data) if fmt == "llamafactory" else None
    normalized = normalize_config(mapped.config if mapped else data, refs)
    return ImportedConfig(normalized, fmt, [*(mapped.warnings if mapped else []), *normalized.warnings])


def llamafactory_run_config(data: dict[str, Any], refs: StudioCatalog) -> tuple[RunConfig, list[ConfigWarning]]:
    """A LLaMA-Factory YAML as a complete run config (``tunesmith train lf.yaml``): its model and datasets must
    be in this studio, since there is no form to supply them."""
    imported = import_config(data, refs, "llamafactory")
    config = imported.normalized.config
    missing = [f"base model {imported.normalized.missing_base_model or '(none given)'}"] if "base_model" not in config else []
    if "datasets" not in config:
        missing.append("datasets (" + (str(data.get("dataset")) if data.get("dataset") else "none given") + ")")
    if missing:
        raise Invalid(f"this studio does not have the {' and the '.join(missing)} of the YAML", loc=("model_name_or_path",),
                      hint="download the model (POST /api/v1/models/download) or put it under the models root; "
                      "register the datasets (Datasets page, or import the LLaMA-Factory data folder)")
    return RunConfig.model_validate(config), imported.warnings
