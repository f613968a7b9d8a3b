"""Run configs as files: the YAML the Train tab downloads (named after the run), and the uploaded YAML
(Tunesmith or LLaMA-Factory) it reads back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.client import ApiError, TunesmithClient
from app.form import validate_config
from app.i18n import t

MAX_CONFIG_BYTES = 1 << 20


def config_yaml(config: dict[str, Any], filename: str, names: dict[str, str] | None = None) -> str:
    """The run config as a YAML file whose first comment line is the command that runs it (like the presets)."""
    lines = [
        f"# tunesmith train {filename}",
        "# Run config from the Tunesmith Train form: the body it sends to POST /api/v1/jobs.",
    ]
    refs = [d if isinstance(d, str) else d["id"] for d in config.get("datasets") or []]
    named = [f"{ref} = {names[ref]}" for ref in [*refs, *config.get("val_datasets", [])] if (names or {}).get(ref)]
    if named:
        lines.append("# datasets: " + ", ".join(named))
    return "\n".join(lines) + "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def config_file_name(run_name: str | None, config: dict[str, Any]) -> str:
    method = config.get("method") or {}
    stem = (run_name or "").strip() or "-".join(
        str(p)
        for p in (
            Path(str(config.get("base_model") or "model")).name,
            method.get("name") if isinstance(method, dict) else method,
            config.get("stage") if config.get("stage") != "sft" else None,
        )
        if p
    )
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") + ".yaml"


def parse_config_file(path: str | Path) -> tuple[dict[str, Any] | None, list[str]]:
    """A run config read from an uploaded YAML (or JSON) file, or None and what is wrong, with the place."""
    path = Path(path)
    name = path.name
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None, [
                (
                    f"{name} is {path.stat().st_size} bytes; a run config is a few hundred. Pick the YAML "
                    "file that Download config (YAML) wrote, or a preset."
                )
            ]
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, [f"{name} is not a text file; pick a .yaml run config."]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [f"{name} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"]
    except OSError as exc:
        return None, [f"cannot read {name}: {exc}"]
    if not isinstance(config, dict):
        held = type(config).__name__ if config is not None else "nothing"
        return None, [
            (
                f"{name} holds {held}, not run-config fields; expected e.g. `base_model: ...` and "
                "`datasets: [...]` on their own lines."
            )
        ]
    problems = validate_config(config)
    return (None, [f"{name}: {p}" for p in problems]) if problems else (config, [])


def read_config_file(
    client: TunesmithClient, path: str | Path, lang: str
) -> tuple[dict[str, Any] | None, list[str], bool]:
    """A Tunesmith run config or a LLaMA-Factory training YAML, read by the API (``POST /configs/from-yaml``:
    LF keys mapped, names resolved, defaults filled): the config, one line per value not applied and whether it
    was a LLaMA-Factory file; or None and why the file cannot be used."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None, [t("config.too_big", lang, name=path.name, size=path.stat().st_size)], False
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [t("config.not_text", lang, name=path.name)], False
    except OSError as exc:
        return None, [t("config.unreadable_file", lang, name=path.name, error=exc)], False
    try:
        answer = client.config_from_yaml(text)
    except ApiError as exc:
        return None, [f"{path.name}: {exc}"], False
    notes = [f"{w.get('key')}: {w.get('msg')}" for w in answer.get("warnings") or []]
    return dict(answer.get("config") or {}), notes, answer.get("format") == "llamafactory"
