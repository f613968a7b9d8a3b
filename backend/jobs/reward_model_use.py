"""What a stage-rm run (a reward model) can be used for. It scores a prompt and a reply with a sequence-
classification head and has no language-model head, so it cannot generate: chatting with it (studio chat, the
OpenAI-compatible route) and GGUF export (llama.cpp converts causal LMs) are refused with a 422 saying what it is
for instead. Its adapter download and safetensors merge work like any run's. No torch."""

from __future__ import annotations

from backend.errors import Invalid
from backend.jobs.store import JobRow


class RewardModelCannotGenerate(Invalid):
    """The run is a reward model and the request needs a model that generates text."""


def is_reward_model(job: JobRow) -> bool:
    return job.config.get("stage") == "rm"


def refuse_reward_model(job: JobRow, what: str, loc: tuple = ("body", "job_id")) -> None:
    """RewardModelCannotGenerate (422) when ``job`` is a stage-rm run; ``what`` is the refused use ("chatted
    with", "exported to GGUF")."""
    if is_reward_model(job):
        raise RewardModelCannotGenerate(
            f"run {job.id} is a reward model (stage 'rm'): it scores a prompt and a reply, it does not generate "
            f"text, so it cannot be {what}", loc=loc,
            hint=f'use it as a grpo reward ({{"name": "reward_model", "run": "{job.id}"}}), download its adapter '
            f"(GET /api/v1/jobs/{job.id}/adapter) or merge it to safetensors (POST /api/v1/jobs/{job.id}/merge)")
