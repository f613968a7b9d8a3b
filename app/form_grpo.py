"""Stage grpo's reward functions as the Train form's rewards table holds them: one row ``[reward, setting,
weight]`` per reward, ``setting`` being the one parameter a reward has (regex: the pattern, length: the target
characters, reward_model: the rm run's job id, python: ``file:function``). :func:`rewards_to_rows` and
:func:`rows_to_rewards` are each other's inverse for every valid ``grpo.rewards``. Pure; no Gradio."""

from __future__ import annotations

from typing import Any

REWARD_NAMES = ("exact_match", "contains", "regex", "length", "json_valid", "reward_model", "python")
# The parameter each reward takes (backend.config.grpo's field), the rest take none.
REWARD_SETTING = {"regex": "pattern", "length": "target_chars", "reward_model": "run", "python": "function"}
REWARD_HEADERS = ("reward", "setting", "weight")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def _number(value: Any, integer: bool = False) -> Any:
    """A table cell as a number where it reads as one; other text is kept for validation to name."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return value.strip()
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def rows_to_rewards(rows: list[list[Any]] | None) -> list[dict[str, Any]]:
    """``grpo.rewards`` entries of the table's rows (blank rows skipped, a blank weight = the default). A setting
    given to a reward that takes none is passed on as ``setting``, so validation names it instead of dropping it."""
    rewards = []
    for row in rows or []:
        cells = [*list(row), None, None, None][:3]
        if all(_blank(c) for c in cells):
            continue
        name = "" if _blank(cells[0]) else str(cells[0]).strip()
        entry: dict[str, Any] = {"name": name}
        if not _blank(cells[1]):
            key = REWARD_SETTING.get(name, "setting")
            entry[key] = _number(cells[1], integer=True) if key == "target_chars" else str(cells[1]).strip()
        if not _blank(cells[2]):
            entry["weight"] = _number(cells[2])
        rewards.append(entry)
    return rewards


def rewards_to_rows(rewards: list[dict[str, Any]] | None) -> list[list[Any]]:
    """The table's rows for ``grpo.rewards`` entries (as the schema dumps them)."""
    rows = []
    for reward in rewards or []:
        name = str(reward.get("name", ""))
        key = REWARD_SETTING.get(name)
        setting = reward.get(key, "") if key else ""
        rows.append([name, "" if setting is None else setting, reward.get("weight", 1.0)])
    return rows


def reward_row(name: str, setting: Any, weight: Any) -> list[Any]:
    """One new table row from the "add a reward" widgets (the setting of the chosen reward only)."""
    return [name, setting if name in REWARD_SETTING and not _blank(setting) else "",
            1.0 if _blank(weight) else weight]
