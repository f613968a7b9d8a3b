"""The Runs card's tracker line: where a run's experiment-tracker data is and the command that opens it, from what
the engine recorded in engine.json (``tracker``: name, location, and W&B's mode; backend.engine.trackers) - never
a guess: a run without that fact shows nothing."""

from __future__ import annotations

import html
import shlex
from typing import Any

from app.i18n import DEFAULT, t
from backend.config.trackers import MLFLOW_EXPERIMENT, WANDB_PROJECT

MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
TRACKER_CSS = """
.ts-tracker { font-size: 13px; border-left: 3px solid var(--color-accent); padding: 4px 10px; }
.ts-tracker code { user-select: all; }
"""


def tracker_facts(engine: dict[str, Any] | None, job_id: str, lang: str = DEFAULT) -> tuple[str, str, str] | None:
    """(what the tracker keeps and where, the command that opens it, how to find this run there), or None when
    the engine recorded no tracker."""
    tracker = (engine or {}).get("tracker")
    if not isinstance(tracker, dict) or not tracker.get("location"):
        return None
    name, location = str(tracker.get("name")), str(tracker["location"])
    quoted = shlex.quote(location)
    if name == "tensorboard":
        return (t("runs.tracker_tensorboard", lang, location=location), f"tensorboard --logdir {quoted}", "")
    if name == "mlflow":
        command = f"mlflow ui --backend-store-uri {quoted}"
        if tracker.get("run_id") and tracker.get("experiment_id") is not None:  # recorded when training began
            page = f"{MLFLOW_UI}/#/experiments/{tracker['experiment_id']}/runs/{tracker['run_id']}"
            return (t("runs.tracker_mlflow", lang, location=location), command,
                    t("runs.tracker_mlflow_run", lang, run=tracker["run_id"], url=page))
        return (t("runs.tracker_mlflow", lang, location=location), command,
                t("runs.tracker_mlflow_find", lang, experiment=MLFLOW_EXPERIMENT, id=job_id,
                  tag=f"tunesmith.run_id={job_id}"))
    if name == "wandb":
        if tracker.get("mode") == "offline":
            return (t("runs.tracker_wandb_offline", lang, location=location),
                    f"wandb sync {shlex.quote(location.rstrip('/') + '/')}offline-run-*",
                    t("runs.tracker_wandb_find", lang, project=WANDB_PROJECT, id=job_id))
        return (t("runs.tracker_wandb_online", lang, location=location), "",
                t("runs.tracker_wandb_find", lang, project=WANDB_PROJECT, id=job_id))
    return (t("runs.tracker_other", lang, name=name, location=location), "", "")


def tracker_html(engine: dict[str, Any] | None, job_id: str, lang: str = DEFAULT) -> str:
    facts = tracker_facts(engine, job_id, lang)
    if facts is None:
        return ""
    where, command, find = facts
    esc = html.escape
    parts = [f'<div class="ts-tracker"><b>{esc(t("runs.tracker", lang))}</b> {esc(where)}']
    if command:
        parts.append(f' · {esc(t("runs.tracker_open", lang))} <code>{esc(command)}</code>')
    if find:
        parts.append(f" · {esc(find)}")
    parts.append("</div>")
    return "".join(parts)
