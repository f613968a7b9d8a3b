"""The experiment trackers a run can report to, and what each needs installed. Pure Python, no torch: the web
process looks packages up (``importlib.util.find_spec``) without importing them."""

from __future__ import annotations

from typing import Literal

Tracker = Literal["none", "tensorboard", "mlflow", "wandb"]

# tracker -> (the module it imports, the command that installs it)
TRACKER_PACKAGES: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", "pip install mlflow-skinny"),
    "wandb": ("wandb", "pip install wandb"),
}

TENSORBOARD_DIR = "tensorboard"  # inside the run dir: the event files
MLFLOW_DIR = "mlruns"            # inside the studio home: the default MLflow file store
MLFLOW_EXPERIMENT = "tunesmith"
WANDB_PROJECT = "tunesmith"
