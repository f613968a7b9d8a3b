"""A continued run (``init_from_run``) starts from its parent's weights: the parent's adapter loaded into the
trainer's fresh adapter of the same shape (lora/qlora), or the parent's trained model loaded instead of the base
(full/freeze, see :func:`weights_dir`). The load is checked tensor by tensor - a continued run that did not
really start from its parent fails instead of silently training a fresh adapter - and recorded in engine.json
(``init_from``: the parent's folder, tensor count and a digest of the loaded values)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from backend.config.schema import ResolvedRun
from backend.engine.failures import EngineError

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def weights_dir(run: ResolvedRun) -> str:
    """Where the model's weights load from: the parent's trained model for a continued full/freeze run, else the
    base model."""
    if run.init_from and run.config.method.name not in ("lora", "qlora"):
        return run.init_from
    return run.model_path


def tensors_digest(state: dict) -> str:
    """sha256 over the names and float32 values of ``state`` (name order), the same for the file and the model."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_parent_adapter(model, adapter_dir: str | Path) -> dict:
    """Copy the parent's adapter (and its extra trained modules) into ``model``'s adapter ``default``; every tensor
    of the file must land and read back equal (in the model's dtype), else EngineError. Returns the facts."""
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not path.is_file():
        raise EngineError(f"the parent run's adapter is missing: {path} does not exist",
                          "continue from another succeeded run, or train this one from scratch")
    state = load_file(str(path))
    set_peft_model_state_dict(model, state, adapter_name="default")
    now = get_peft_model_state_dict(model, adapter_name="default")
    missing = sorted(set(state) - set(now))
    extra = sorted(set(now) - set(state))
    differ = [name for name in state if name in now
              and not torch.equal(now[name].detach().cpu(), state[name].to(now[name].dtype))]
    if missing or extra or differ:
        first = (missing or extra or differ)[0]
        raise EngineError(f"the parent run's adapter does not fit this run's adapter ({len(missing)} tensors not in "
                          f"the model, {len(extra)} not in the file, {len(differ)} differ after loading; e.g. "
                          f"{first})", "continue with the parent's method settings (rank, targets, extra modules)")
    print(f"continued from {adapter_dir}: {len(state)} adapter tensors loaded", flush=True)
    return {"path": str(adapter_dir), "tensors": len(state), "digest": tensors_digest(state)}
