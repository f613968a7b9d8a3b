"""The settings of stage ``grpo`` (Group Relative Policy Optimization): how many replies are sampled per prompt,
how long and how hot, the KL weight, the loss variant, and the weighted reward functions that score the replies.
Pure pydantic, no torch; ``RunConfig.grpo`` holds them.

Built-in reward functions (each scores one reply in [0, 1]; the run's reward is their weighted sum):

- ``exact_match``: the reply equals the dataset's reference reply (case and surrounding space ignored);
- ``contains``: the reply contains the reference reply;
- ``regex``: the reply matches ``pattern`` (Python ``re.search``; anchor it with ^...$ for a format check);
- ``length``: 1 at ``target_chars`` characters, falling linearly to 0 at twice as far (or at 0 characters);
- ``json_valid``: the reply parses as JSON;
- ``reward_model``: the score of the reward model a finished stage-rm run of this studio trained (``run``: its job
  id), on the prompt and the reply (RLHF's RM -> RL; unbounded, not [0, 1]);
- ``python``: ``function`` = ``file:function`` from the studio's ``rewards/`` folder, put there by the operator
  (a request only names it; the file is copied into the run directory at submit, so the run keeps the code it used).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from backend.config.methods import StrictModel


class _Reward(StrictModel):
    weight: float = Field(1.0, ge=-100.0, le=100.0, description="Weight of this reward in the sum (negative = a penalty).")


class ExactMatchReward(_Reward):
    """1 when the reply equals the reference reply (case and surrounding white space ignored), else 0."""

    name: Literal["exact_match"] = "exact_match"


class ContainsReward(_Reward):
    """1 when the reply contains the reference reply (case ignored), else 0."""

    name: Literal["contains"] = "contains"


class RegexReward(_Reward):
    """1 when the reply matches the pattern (re.search), else 0."""

    name: Literal["regex"] = "regex"
    pattern: str = Field(..., min_length=1, max_length=1000,
                         description=r"Python regular expression, e.g. ^\d+$ for a reply that is a number only.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        import re

        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is no regular expression ({exc}); fix it") from exc
        return pattern


class LengthReward(_Reward):
    """1 at target_chars characters, falling linearly to 0 at 0 characters or at twice the target."""

    name: Literal["length"] = "length"
    target_chars: int = Field(..., ge=1, le=1_000_000, description="The reply length (characters) that scores 1.")


class JsonValidReward(_Reward):
    """1 when the reply parses as JSON, else 0."""

    name: Literal["json_valid"] = "json_valid"


class RewardModelReward(_Reward):
    """The score a finished stage-rm run's reward model gives the prompt and the reply."""

    name: Literal["reward_model"] = "reward_model"
    run: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                     description="Job id of a finished stage-rm run of this studio (its runs/<id> directory).")


class PythonReward(_Reward):
    """A function from a file the operator put into the studio's rewards/ folder (never code sent in a request)."""

    name: Literal["python"] = "python"
    function: str = Field(..., min_length=3, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$",
                          description="file:function, e.g. checks:ends_with_period for def ends_with_period(...) in "
                          "<studio home>/rewards/checks.py (GET /api/v1/rewards lists them). Called as trl calls a "
                          "reward function: f(prompts, completions, reference=..., **kwargs) -> one float per reply.")


Reward = Annotated[ExactMatchReward | ContainsReward | RegexReward | LengthReward | JsonValidReward
                   | RewardModelReward | PythonReward, Field(discriminator="name")]


class GrpoConfig(StrictModel):
    """Stage grpo: sample ``num_generations`` replies per prompt, score them with ``rewards``, and move the policy
    toward the replies that beat their group's mean (DeepSeekMath's GRPO, trl's GRPOTrainer)."""

    num_generations: int = Field(
        4, ge=2, le=256,
        description="Replies sampled per prompt (the group whose mean reward is the baseline). per_device_batch_size "
        "x gradient_accumulation_steps must be a multiple of it.",
    )
    max_completion_length: int = Field(128, ge=1, le=131_072, description="Longest sampled reply, in tokens.")
    temperature: float = Field(1.0, gt=0.0, le=10.0, description="Sampling temperature of the replies.")
    beta: float = Field(
        0.0, ge=0.0, le=100.0,
        description="KL weight toward the starting model (0 = no reference model is loaded, trl's default; "
        "DeepSeek-R1 used 0.001).",
    )
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "dapo",
        description="How token losses are averaged: grpo = per reply, then over replies (the paper's; favours short "
        "replies); dr_grpo = by a constant (Dr. GRPO, no length bias); dapo = over all tokens of the batch (DAPO, trl's "
        "default); bnpo = over the tokens of the micro-batch.",
    )
    rewards: list[Reward] = Field(
        default_factory=list, max_length=16,
        description='Weighted reward functions, e.g. [{"name": "regex", "pattern": "^\\\\d+$"}, '
        '{"name": "exact_match", "weight": 2}]. Stage grpo needs at least one. Built-ins: exact_match and contains '
        "(against the dataset's reference reply), regex, length (target_chars), json_valid; reward_model (run: a stage-rm "
        'run); python (function: "file:function" from the rewards/ folder, GET /api/v1/rewards).',
    )


def grpo_problem(stage: str, grpo: GrpoConfig, per_device_batch_size: int, gradient_accumulation_steps: int,
                 cutoff_len: int) -> str | None:
    """Why these grpo settings cannot run with this stage and batch shape (None when they can)."""
    if stage != "grpo":
        return None if grpo == GrpoConfig() else (f"grpo settings apply to stage 'grpo' and the stage is {stage!r}; "
                                                   "clear grpo or set stage to 'grpo'")
    if not grpo.rewards:
        return ("stage 'grpo' learns from reward functions and none is given; add one to grpo.rewards, e.g. "
                '{"name": "exact_match"} or {"name": "regex", "pattern": "..."}')
    if grpo.max_completion_length >= cutoff_len:
        return (f"stage 'grpo' fits prompt + reply into cutoff_len={cutoff_len} and grpo.max_completion_length="
                f"{grpo.max_completion_length} leaves no room for the prompt; raise cutoff_len or lower "
                "max_completion_length")
    replies = per_device_batch_size * gradient_accumulation_steps
    if replies % grpo.num_generations:
        return (f"stage 'grpo' scores groups of grpo.num_generations={grpo.num_generations} replies and a step "
                f"samples per_device_batch_size x gradient_accumulation_steps = {replies}; make that a multiple of "
                "num_generations")
    return None
