"""GRPO reward functions from Python files the operator puts into ``<studio home>/rewards/``. A request only names
one (``{"name": "python", "function": "file:function"}``), never sends code. The web process reads the files with
``ast`` and never imports them: listing, the submit-time check (unknown file or function -> 422 naming
``grpo.rewards[i].function``) and the copy of each used file into ``<run dir>/rewards/``, from where the engine
imports it (so the run keeps the code it trained with, and a resume uses the same)."""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

from backend.config.grpo import PythonReward
from backend.config.schema import RunConfig
from backend.errors import Invalid
from backend.jobs.checks import JobConfigError

REWARDS_DIR = "rewards"  # under the studio home, and under a run directory
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class PythonRewardInfo:
    function: str          # file:function, as a request names it
    file: str              # the file's name in the rewards folder
    doc: str               # the function's docstring, first line ("" without one)


def rewards_folder(home: Path) -> Path:
    return home / REWARDS_DIR


def _functions(path: Path) -> dict[str, str]:
    """Top-level ``def`` names (not starting with _) of one file -> first docstring line; Invalid when unreadable."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise Invalid(f"reward file {path.name} is over {MAX_FILE_BYTES} bytes", loc=("path", "rewards"))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise Invalid(f"reward file {path.name} cannot be read as Python: {exc}", loc=("path", "rewards"),
                      hint=f"fix {path} (the operator's rewards folder)") from None
    return {node.name: (ast.get_docstring(node) or "").strip().split("\n")[0] for node in tree.body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def list_python_rewards(home: Path) -> list[PythonRewardInfo]:
    """Every public top-level function of every ``rewards/*.py``, sorted; a file that is no valid Python is a 422."""
    folder = rewards_folder(home)
    if not folder.is_dir():
        return []
    return [PythonRewardInfo(f"{path.stem}:{name}", path.name, doc)
            for path in sorted(folder.glob("*.py")) if path.is_file() and path.stem.isidentifier()
            for name, doc in sorted(_functions(path).items())]


def check_python_rewards(config: RunConfig, home: Path) -> None:
    """JobConfigError (422) for the first python reward whose file or function is not in the rewards folder."""
    if config.stage != "grpo":
        return
    folder = rewards_folder(home)
    for i, spec in enumerate(config.grpo.rewards):
        if not isinstance(spec, PythonReward):
            continue
        stem, name = spec.function.split(":")
        path = folder / f"{stem}.py"
        loc = ("grpo", "rewards", i, "function")
        if not path.is_file():
            raise JobConfigError(loc, f"grpo.rewards[{i}].function: no file {stem}.py in the rewards folder "
                                 f"({folder}); the operator puts reward files there, GET /api/v1/rewards lists them")
        if name not in _functions(path):
            raise JobConfigError(loc, f"grpo.rewards[{i}].function: {stem}.py has no top-level function {name!r}; "
                                 "GET /api/v1/rewards lists the functions")


def copy_python_rewards(config: RunConfig, home: Path, run_dir: Path) -> None:
    """Copy the files the run's python rewards name into ``<run_dir>/rewards/`` (the engine imports them there)."""
    stems = {spec.function.split(":")[0] for spec in config.grpo.rewards if isinstance(spec, PythonReward)}
    if config.stage != "grpo" or not stems:
        return
    (run_dir / REWARDS_DIR).mkdir()
    for stem in sorted(stems):
        shutil.copyfile(rewards_folder(home) / f"{stem}.py", run_dir / REWARDS_DIR / f"{stem}.py")
