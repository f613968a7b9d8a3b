"""GRPO reward functions the operator put into the studio's rewards/ folder (read, never imported, here)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.deps import SettingsDep
from backend.api.errors import error_responses
from backend.jobs.python_rewards import list_python_rewards, rewards_folder

router = APIRouter(prefix="/rewards", tags=["rewards"])


class PythonRewardPublic(BaseModel):
    function: str = Field(description='Name it in grpo.rewards as {"name": "python", "function": this}.')
    file: str = Field(description="The file in the rewards folder.")
    doc: str = Field(description="First line of the function's docstring.")


class RewardsPublic(BaseModel):
    folder: str = Field(description="The rewards folder (<studio home>/rewards); the operator puts *.py files there.")
    data: list[PythonRewardPublic]


@router.get("", response_model=RewardsPublic, responses=error_responses())  # 422: a file that is no Python
def list_rewards(settings: SettingsDep) -> RewardsPublic:
    """The Python reward functions a grpo run can name: each public top-level function of rewards/*.py."""
    return RewardsPublic(folder=str(rewards_folder(settings.home)),
                         data=[PythonRewardPublic(**vars(info)) for info in list_python_rewards(settings.home)])
