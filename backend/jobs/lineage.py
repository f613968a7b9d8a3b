"""Continue from a finished run (``init_from_run``): which of the parent's weights the new run starts from, or a
JobConfigError (422) naming the field to fix. Pure checks over the parent's row and run directory; no torch.

What may continue what:

- lora/qlora from a lora/qlora parent: the parent's adapter is loaded as it is, so everything that shapes or
  scales it (rank, alpha, targets, rsLoRA, DoRA, extra trained modules) must be the parent's; PiSSA is refused on
  either side (it changes the base weights, and its saved adapter is a rank-2r plain LoRA).
- full/freeze from a full/freeze parent: the parent's trained model is loaded instead of the base.
- stage rm (a score head) only from an rm parent, and no other stage from an rm parent.
"""

from __future__ import annotations

from pathlib import Path

from backend.config.methods import LoraMethod
from backend.config.schema import RunConfig
from backend.jobs.checks import JobConfigError
from backend.jobs.store import JobRow

# what the loaded adapter's tensors and scaling depend on: the new run must say the same as its parent
ADAPTER_SHAPE_FIELDS = ("rank", "alpha", "targets", "use_rslora", "use_dora", "extra_trainable_modules")
LOC = ("init_from_run",)


def parent_weights(parent: JobRow | None, config: RunConfig, model_path: str) -> Path:
    """The parent's adapter or model directory this run starts from; JobConfigError (422) when it cannot."""
    parent_id = str(config.init_from_run)
    if parent is None:
        raise JobConfigError(LOC, f"no run with id {parent_id!r} to continue from; pick a succeeded run from "
                             "GET /api/v1/jobs")
    if parent.state != "succeeded":
        raise JobConfigError(LOC, f"run {parent_id} is {parent.state}; only a succeeded run can be continued "
                             f"(resume a failed or cancelled run instead: POST /api/v1/jobs/{parent_id}/resume)")
    if not parent.run.has_run():
        raise JobConfigError(LOC, f"run {parent_id} has lost its run directory ({parent.run_dir})")
    parent_config = parent.run.config
    weights = parent.run.weights()
    if Path(weights.base_model).resolve() != Path(model_path).resolve():
        raise JobConfigError(("base_model",), f"run {parent_id} trained on {weights.base_model} and this run's base "
                             f"model is {model_path}; a continued run uses its parent's base model "
                             f"({parent_config.base_model!r})")
    _check_stage(parent_id, parent_config, config)
    child, theirs = config.method, parent_config.method
    if isinstance(child, LoraMethod):  # lora and qlora
        if not isinstance(theirs, LoraMethod):
            raise JobConfigError(("method", "name"), f"run {parent_id} trained a whole model ({theirs.name}), not an "
                                 "adapter; to put a new adapter on it, set base_model to its model folder "
                                 f"({parent.run.model_dir}) and clear init_from_run, or use method full/freeze")
        _check_adapter_shape(parent_id, theirs, child)
        if weights.adapter is None:
            raise JobConfigError(LOC, f"run {parent_id} has no adapter on disk ({parent.run.adapter_dir})")
        return weights.adapter
    if isinstance(theirs, LoraMethod):
        raise JobConfigError(("method", "name"), f"run {parent_id} trained a {theirs.name} adapter and method "
                             f"{child.name} trains a whole model; continue with method lora/qlora, or merge the run "
                             f"(POST /api/v1/jobs/{parent_id}/merge) and use its merged folder as base_model")
    if weights.model is None:
        raise JobConfigError(LOC, f"run {parent_id} has no trained model on disk ({parent.run.model_dir})")
    return weights.model


def _check_stage(parent_id: str, parent_config: RunConfig, config: RunConfig) -> None:
    if (parent_config.stage == "rm") != (config.stage == "rm"):
        what = "a reward model (a score head)" if parent_config.stage == "rm" else f"a stage {parent_config.stage} model"
        raise JobConfigError(("stage",), f"run {parent_id} trained {what} and this run is stage {config.stage!r}; a "
                             "reward model continues only as stage 'rm', and stage 'rm' only from an rm run")


def _check_adapter_shape(parent_id: str, theirs: LoraMethod, child: LoraMethod) -> None:
    if theirs.init == "pissa":
        raise JobConfigError(LOC, f"run {parent_id} trained a PiSSA adapter, saved as a rank-{2 * theirs.rank} plain "
                             "LoRA on the original base; merge it and use the merged folder as base_model instead")
    if child.init == "pissa":
        raise JobConfigError(("method", "init"), "method.init 'pissa' initialises a new adapter from the base "
                             "weights and a continued run loads its parent's adapter; use init 'default'")
    for name in ADAPTER_SHAPE_FIELDS:
        if getattr(child, name) != getattr(theirs, name):
            raise JobConfigError(("method", name), f"method.{name} is {getattr(child, name)!r} and run {parent_id}'s "
                                 f"adapter was trained with {getattr(theirs, name)!r}; a continued run loads that "
                                 f"adapter as it is, so set method.{name} to {getattr(theirs, name)!r}")
