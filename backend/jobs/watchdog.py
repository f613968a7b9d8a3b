"""Stall watchdog: a running job that has logged no training step for k x its median step time is *stalled*.

"Training hangs at 0% with no feedback" is a frequent complaint about fine-tuning tools; this names the hang and
shows where the process is stuck. Checked from the runner's tick (throttled). Rules:

- only after the model-loading phase: the job must have logged at least ``MIN_ROWS`` training rows (so a median
  step time exists), and only steps count - an eval or a slow save shows up as one long step, never as a stall
  while the median is small (k defaults to 10);
- threshold = max(``TUNESMITH_STALL_MIN_S`` (default 300 s), ``TUNESMITH_STALL_FACTOR`` (default 10) x median
  step time), both bounded;
- on a stall: ``stall.json`` in the run dir (since, idle time, median, threshold, last step), and once per stall a
  SIGUSR1 to the training process (``engine.pid``), which dumps every thread's Python stack into ``stacks.txt``
  (backend/engine/stall_probe.py); GET /jobs/{id} shows both with the last log lines. A step logged again, or
  the job ending, clears ``stall.json``. The job keeps running: the user cancels it (then resumes it from its
  last checkpoint) or waits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from backend.config import rundir
from backend.config.rundir import RunDir
from backend.fsio import atomic_write_json, read_json_object, tail_text

log = logging.getLogger("tunesmith.watchdog")

MIN_ROWS = 2  # one step interval at least: before that the job is still loading (its own phase line says so)
FACTOR_ENV, MIN_S_ENV = "TUNESMITH_STALL_FACTOR", "TUNESMITH_STALL_MIN_S"
FACTOR_BOUNDS, MIN_S_BOUNDS = (2.0, 1000.0), (1.0, 86_400.0)


def _bounded_env(name: str, default: float, bounds: tuple[float, float]) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        value = default
    return min(max(value, bounds[0]), bounds[1])


@dataclass(frozen=True)
class StallRule:
    factor: float = 10.0
    min_s: float = 300.0

    @classmethod
    def from_env(cls) -> StallRule:
        return cls(factor=_bounded_env(FACTOR_ENV, 10.0, FACTOR_BOUNDS), min_s=_bounded_env(MIN_S_ENV, 300.0, MIN_S_BOUNDS))

    def verdict(self, step_times: list[float], last_step: int, now: float) -> dict | None:
        """The stall facts when the newest of ``step_times`` (wall-clock times of logged training rows, oldest
        first) is older than the threshold, else None. Pure."""
        if len(step_times) < MIN_ROWS:
            return None
        gaps = [b - a for a, b in pairwise(step_times) if b >= a]
        median = statistics.median(gaps) if gaps else 0.0
        threshold = max(self.min_s, self.factor * median)
        idle = now - step_times[-1]
        if idle <= threshold:
            return None
        return {"since": round(step_times[-1] + threshold, 3), "idle_s": round(idle, 1),
                "median_step_s": round(median, 3), "threshold_s": round(threshold, 1), "last_step": last_step,
                "factor": self.factor, "min_s": self.min_s}


def step_times(run: RunDir, max_bytes: int = 65_536) -> tuple[list[float], int]:
    """``(times, last step)`` of the training rows in the tail of events.jsonl (eval rows do not count)."""
    times, last = [], 0
    for line in tail_text(run.file(rundir.EVENTS_FILE), max_bytes=max_bytes).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "loss" in row and isinstance(row.get("time"), (int, float)):
            times.append(float(row["time"]))
            last = int(row.get("step") or 0)
    return times, last


def request_stack_dump(run: RunDir) -> str | None:
    """Empty stacks.txt and send SIGUSR1 to the training process; the reason when no dump can come."""
    if not hasattr(signal, "SIGUSR1"):
        return "no SIGUSR1 on this platform"
    try:
        pid = int(run.file(rundir.PID_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return f"the training process wrote no {rundir.PID_FILE}"
    try:  # a pid from an earlier attempt may be another process now: signal only this run's training process
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            ours = run.path.name.encode() in fh.read()
    except OSError:
        ours = False
    if not ours:
        return f"pid {pid} ({rundir.PID_FILE}) is not this run's training process (or /proc cannot tell)"
    try:
        run.file(rundir.STACKS_FILE).write_text("", encoding="utf-8")
        os.kill(pid, signal.SIGUSR1)
    except OSError as exc:
        return f"could not signal pid {pid}: {exc}"
    return None


def attempt_start(started_at: str | None) -> float:
    """The epoch time a job's current attempt started (its row's ``started_at``), 0 when unknown."""
    try:
        return datetime.fromisoformat(started_at).timestamp() if started_at else 0.0
    except ValueError:
        return 0.0


class Watchdog:
    """Checks the running jobs' run dirs every ``interval_s`` (:meth:`due`); writes or clears their stall.json."""

    def __init__(self, rule: StallRule | None = None, interval_s: float = 2.0):
        self.rule = rule or StallRule.from_env()
        self.interval_s = interval_s
        self._last_check = 0.0
        self._dumped: set[str] = set()  # run dirs signalled for their current stall

    def due(self) -> bool:
        mono = time.monotonic()
        if mono - self._last_check < self.interval_s:
            return False
        self._last_check = mono
        return True

    def check(self, running: dict[str, str | None], now: float | None = None) -> None:
        """``running``: run dir -> started_at of each running job. Rows logged before the attempt started (a
        resumed run keeps its earlier events) do not count: a resumed run is loading again, not stalled."""
        now = time.time() if now is None else now
        for path, started_at in running.items():
            self.check_run(RunDir(path), now, attempt_start(started_at))
        self._dumped &= set(running)

    def check_run(self, run: RunDir, now: float, since: float = 0.0) -> dict | None:
        times, last_step = step_times(run)
        stall = self.rule.verdict([t for t in times if t >= since], last_step, now)
        stall_file = run.file(rundir.STALL_FILE)
        if stall is None:
            stall_file.unlink(missing_ok=True)
            self._dumped.discard(str(run.path))
            return None
        if str(run.path) not in self._dumped:
            self._dumped.add(str(run.path))
            stall["dump_problem"] = request_stack_dump(run)
            log.warning("run %s stalled: no step for %.0f s (median step %.2f s)", run.path.name, stall["idle_s"],
                        stall["median_step_s"])
        else:
            stall["dump_problem"] = (read_json_object(stall_file) or {}).get("dump_problem")
        atomic_write_json(stall_file, stall)
        return stall
