"""A run directory, the source of truth for a run: the names of its files and :class:`RunDir`, which owns them.

The web side (jobs service, chat, evaluations, API views) and the engine's ``resolve_run_target`` ask a
``RunDir`` what a run is (its resolved config, from ``run.yaml``, the one home of the run config), which weights it
has (adapter / trained model / merged, plus the base model), its last logged step, the engine's facts, its result
and stop flag, instead of joining paths and reading files themselves. Imports no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backend.config.schema import ResolvedRun, RunConfig
from backend.fsio import (
    atomic_write_text,
    atomic_write_yaml,
    read_json_object,
    read_yaml,
    tail_text,
)

RUN_FILE = "run.yaml"          # ResolvedRun: config + resolved model/dataset paths
LAUNCH_FILE = "launch.json"    # argv and env the job was started with
LOG_FILE = "stdout.log"        # stdout+stderr of the training process
EVENTS_FILE = "events.jsonl"   # one JSON object per logging step
RESULT_FILE = "result.json"    # written by the engine at the end: {"status": "succeeded"|"failed", ...}
STOP_FILE = "stop-requested"  # written by POST /jobs/{id}/stop: the engine ends training at the next step and saves
ENGINE_FILE = "engine.json"    # written by the engine when training starts: precision, attention, kernels, plan
ADAPTER_DIR = "adapter"        # LoRA/QLoRA: adapter_config.json + adapter_model.safetensors + tokenizer
MODEL_DIR = "model"            # full/freeze: the trained model (safetensors + config + tokenizer)
MERGED_DIR = "merged"          # LoRA merged into the base model (safetensors shards + config + tokenizer)
CHECKPOINTS_DIR = "checkpoints"
EVALUATIONS_DIR = "evaluations"  # evaluations/<eval_id>/{metrics.json, predictions.jsonl, evaluate.log}
MERGE_LOG_FILE = "merge.log"   # output of the last merge
PID_FILE = "engine.pid"        # the training (main) process's pid, for the stall watchdog's stack-dump signal
STACKS_FILE = "stacks.txt"     # Python stack dumps of the training process (faulthandler on SIGUSR1)
STALL_FILE = "stall.json"      # written by the stall watchdog while a running job logs no step (see jobs/watchdog)


def write_resolved_run(run_dir: Path, run: ResolvedRun) -> None:
    atomic_write_yaml(run_dir / RUN_FILE, run.model_dump(mode="json"))


def read_resolved_run(run_dir: Path) -> ResolvedRun:
    return ResolvedRun.model_validate(read_yaml(run_dir / RUN_FILE))


TrainedOutput = Literal["adapter", "model"]


@dataclass(frozen=True)
class RunWeights:
    """Which weights a run has on disk. ``adapter``/``model``/``merged`` are None when absent (or incomplete: each
    is written to a temp folder and renamed, so a present config file means a complete folder)."""

    base_model: str            # the base model directory the run trained from (run.yaml's model_path)
    adapter: Path | None       # LoRA/QLoRA adapter
    model: Path | None         # full/freeze: the whole trained model
    merged: Path | None        # base + adapter merged by POST /jobs/{id}/merge

    @property
    def trained(self) -> TrainedOutput | None:
        """What training produced: ``"adapter"``, ``"model"``, or None (no trained output on disk)."""
        return "adapter" if self.adapter else "model" if self.model else None

    @property
    def whole_model(self) -> Path | None:
        """A directory loadable as one model without an adapter: the trained model, else the merged one."""
        return self.model or self.merged


@dataclass(frozen=True)
class RunFacts:
    """What a run's files say right now, read in one pass for a view of the job (the API's JobPublic)."""

    last_event: dict[str, Any] | None
    engine: dict[str, Any] | None
    has_merged: bool
    stop_requested: bool
    stopped_early_at_step: int | None
    stall: dict[str, Any] | None = None  # the stall watchdog's verdict with log tail and stack dump (RunDir.stall)


class RunDir:
    """One run directory. Cheap to make (no I/O until asked); every reader tolerates a run still being written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER_DIR

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def merged_dir(self) -> Path:
        return self.path / MERGED_DIR

    @property
    def evaluations_dir(self) -> Path:
        return self.path / EVALUATIONS_DIR

    # -- the resolved run (run.yaml) ---------------------------------------------------------------------------
    def has_run(self) -> bool:
        return (self.path / RUN_FILE).is_file()

    def write_run(self, run: ResolvedRun) -> None:
        write_resolved_run(self.path, run)

    def read_run(self) -> ResolvedRun:
        return read_resolved_run(self.path)

    @property
    def config(self) -> RunConfig:
        """The run's config as the engine reads it (run.yaml), not the database's index copy."""
        return self.read_run().config

    # -- weights -----------------------------------------------------------------------------------------------
    def weights(self) -> RunWeights:
        """Which weights are on disk; the base model comes from run.yaml ('' when run.yaml is gone)."""
        adapter, model, merged = self.adapter_dir, self.model_dir, self.merged_dir
        return RunWeights(
            base_model=self.read_run().model_path if self.has_run() else "",
            adapter=adapter if (adapter / "adapter_config.json").is_file() else None,
            model=model if (model / "config.json").is_file() else None,
            merged=merged if (merged / "config.json").is_file() else None,
        )

    # -- what the engine wrote ---------------------------------------------------------------------------------
    def result(self) -> dict[str, Any] | None:
        """result.json (written atomically at the end, success or failure), or None before that."""
        return read_json_object(self.path / RESULT_FILE)

    def engine_facts(self) -> dict[str, Any] | None:
        """engine.json (precision, attention, kernels, memory plan), or None before training started."""
        return read_json_object(self.path / ENGINE_FILE)

    def last_event(self) -> dict[str, Any] | None:
        """The newest complete training row of events.jsonl (reads only the file's tail)."""
        for line in reversed(tail_text(self.path / EVENTS_FILE, max_bytes=8192).splitlines()):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "loss" in row:
                return row
        return None

    def stopped_early_at_step(self) -> int | None:
        step = (self.result() or {}).get("stopped_early_at_step")
        return step if isinstance(step, int) else None

    def log_tail(self, lines: int | None = None, max_bytes: int = 64_000) -> str:
        return tail_text(self.path / LOG_FILE, max_bytes=max_bytes, lines=lines)

    def facts(self) -> RunFacts:
        return RunFacts(last_event=self.last_event(), engine=self.engine_facts(),
                        has_merged=(self.merged_dir / "config.json").is_file(), stop_requested=self.stop_requested(),
                        stopped_early_at_step=self.stopped_early_at_step(), stall=self.stall())

    # -- the stall watchdog ------------------------------------------------------------------------------------
    def stall(self, log_lines: int = 20, dump_bytes: int = 16_000) -> dict[str, Any] | None:
        """stall.json (the watchdog's verdict) with the last log lines and the newest stack dump, or None."""
        stall = read_json_object(self.path / STALL_FILE)
        if stall is None:
            return None
        dump = tail_text(self.path / STACKS_FILE, max_bytes=dump_bytes)  # emptied by the watchdog before it signals
        return {**stall, "log_tail": self.log_tail(lines=log_lines), "stack_dump": dump}

    # -- the stop flag -----------------------------------------------------------------------------------------
    def stop_requested(self) -> bool:
        return (self.path / STOP_FILE).exists()

    def request_stop(self, when: str) -> None:
        atomic_write_text(self.path / STOP_FILE, when + "\n")

    def clear_stop(self) -> None:
        (self.path / STOP_FILE).unlink(missing_ok=True)
