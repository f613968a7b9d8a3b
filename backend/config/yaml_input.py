"""Config files as text: a YAML run config (Tunesmith's, or a LLaMA-Factory training YAML) read safely into its
top-level mapping, with the line of any error. Pure, torch-free."""

from __future__ import annotations

from typing import Any

import yaml

from backend.errors import Invalid

MAX_YAML_BYTES = 256 * 1024


def parse_config_yaml(text: str, kind: str = "run config YAML") -> dict[str, Any]:
    """The YAML's top-level mapping, or :class:`Invalid` saying which line is wrong. Anchors and aliases are
    refused: no config needs them, and a few nested aliases expand to gigabytes (a "billion laughs")."""
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        raise Invalid(f"the YAML is {size} bytes; a {kind} is a few hundred (limit {MAX_YAML_BYTES})",
                      loc=("body", "yaml"))
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise Invalid(f"the YAML uses an alias (*name) at line {line}; write the value out instead",
                              loc=("body", "yaml"))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Invalid(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", loc=("body", "yaml"),
                      hint="fix that line and load the file again") from None
    if not isinstance(data, dict):
        held = "nothing" if data is None else f"a {type(data).__name__}"
        raise Invalid(f"the YAML holds {held}; a {kind} is a mapping of names to values", loc=("body", "yaml"))
    return {str(k): v for k, v in data.items()}
