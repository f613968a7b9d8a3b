"""Submit-time checks of a grpo run's ``reward_model`` rewards: each names a succeeded stage-rm run of this studio
whose weights are on disk, or the submit is a 422 naming ``grpo.rewards[i].run``. Pure checks over the job rows;
no torch (the engine loads the reward model)."""

from __future__ import annotations

from collections.abc import Callable

from backend.config.grpo import RewardModelReward
from backend.config.schema import RunConfig
from backend.jobs.checks import JobConfigError
from backend.jobs.store import JobRow


def check_reward_model_runs(config: RunConfig, get_job: Callable[[str], JobRow | None]) -> None:
    """JobConfigError (422) for the first reward_model reward whose run cannot score replies."""
    if config.stage != "grpo":
        return
    for i, spec in enumerate(config.grpo.rewards):
        if isinstance(spec, RewardModelReward):
            problem = _reward_run_problem(spec.run, get_job(spec.run))
            if problem:
                raise JobConfigError(("grpo", "rewards", i, "run"), f"grpo.rewards[{i}].run: {problem}")


def _reward_run_problem(run_id: str, job: JobRow | None) -> str | None:
    if job is None:
        return f"no run with id {run_id!r}; name a succeeded stage-rm run from GET /api/v1/jobs"
    if job.state != "succeeded":
        return f"run {run_id} is {job.state}; a reward model must come from a succeeded stage-rm run"
    if not job.run.has_run():
        return f"run {run_id} has lost its run directory ({job.run_dir})"
    stage = job.run.config.stage
    if stage != "rm":
        return (f"run {run_id} is stage {stage!r}, not a reward model; train one with stage 'rm' on a preference "
                "dataset and name that run")
    weights = job.run.weights()
    if weights.adapter is None and weights.model is None:
        return f"run {run_id} has no adapter or model on disk ({job.run_dir})"
    return None
