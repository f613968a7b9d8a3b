"""Import a stage-grpo ``python`` reward from the run directory's ``rewards/`` copy (made at submit from the
studio's rewards folder) and wrap it so a wrong return value fails the run naming the function, never a silent
score."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from backend.engine.rewards import RewardFunction

REWARDS_DIR = "rewards"


def python_reward_function(run_dir: Path, function: str) -> RewardFunction:
    """``file:function`` from ``<run_dir>/rewards/file.py``; ValueError saying what is missing."""
    stem, name = function.split(":")
    path = run_dir / REWARDS_DIR / f"{stem}.py"
    if not path.is_file():
        raise ValueError(f"python reward {function}: {path} is missing (it is copied there at submit)")
    spec = importlib.util.spec_from_file_location(f"tunesmith_rewards_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    user_function = getattr(module, name, None)
    if not callable(user_function):
        raise TypeError(f"python reward {function}: {path} has no function {name!r}")

    def checked(*args, completions, **kwargs) -> list[float]:
        scores = user_function(*args, completions=completions, **kwargs)
        if (not isinstance(scores, (list, tuple)) or len(scores) != len(completions)
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
                           for s in scores)):
            raise TypeError(f"python reward {function} must return one finite number per completion "
                             f"({len(completions)}); it returned {scores!r:.200}")
        return [float(s) for s in scores]

    return checked
