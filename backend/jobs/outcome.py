"""How a finished job ended, read from its run directory (result.json, the trained output, exit code, log tail).

The run directory decides, not the exit code alone: a job adopted after a studio restart is watched by pid, so
its exit code is unknown, yet result.json and the adapter/model it wrote say exactly how it ended. A process that
died without writing result.json is described by what is known (signal or exit code, the log's last line), not
by a guess at the cause.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from backend.config.rundir import RunDir


@dataclass
class Outcome:
    state: str
    error: str | None = None
    hint: str | None = None
    output: str | None = None


LOG_HINT = "see the run's log (GET /api/v1/jobs/{id}/logs) for what it printed last"
SIGNAL_HINTS = {
    "SIGKILL": "SIGKILL comes from `kill -9` or from the system's out-of-memory killer (the system log, e.g. "
               "`dmesg`, says 'Out of memory' then); if it was memory, lower per_device_batch_size or cutoff_len",
    "SIGTERM": "SIGTERM is a request to stop, from a user, a service manager or a shutdown",
    "SIGINT": "SIGINT is Ctrl+C in the terminal that started it",
}


def _last_error_line(log_text: str) -> str | None:
    for line in reversed(log_text.splitlines()):
        line = line.strip()
        if line and ("Error" in line or "error" in line or "Exception" in line):
            return line[:500]
    return None


def _last_line(log_text: str) -> str | None:
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _signal_name(exit_code: int) -> str | None:
    """The signal that ended a process: Popen reports -N, a shell 128+N."""
    number = -exit_code if exit_code < 0 else exit_code - 128 if 128 < exit_code < 160 else None
    try:
        return signal.Signals(number).name if number else None
    except ValueError:
        return None


def describe_exit(exit_code: int | None, log_text: str) -> tuple[str, str]:
    """(error, hint) for a process that ended without result.json: what is known, nothing guessed."""
    last = _last_error_line(log_text) or _last_line(log_text)
    said = f"; its log ends with: {last}" if last else "; its log is empty"
    if exit_code is None:
        return (f"the training process ended while the studio was not watching it (exit code unknown) without "
                f"writing result.json{said}", LOG_HINT)
    name = _signal_name(exit_code)
    if name:
        return (f"the training process was killed by {name} (exit code {exit_code}){said}",
                SIGNAL_HINTS.get(name, LOG_HINT))
    return f"the training process exited with code {exit_code}{said}", LOG_HINT


def read_outcome(run_dir: Path, exit_code: int | None) -> Outcome:
    """``exit_code`` None: unknown (an adopted process, or the studio was down); result.json decides then."""
    run = RunDir(run_dir)
    result = run.result()
    if result and result.get("status") == "succeeded":
        # result.json is written (atomically) only after the outputs are saved; a non-zero exit after it is a crash
        # while the processes tear down (seen with DeepSpeed on CPU: "terminate called without an active exception"),
        # which loses nothing - but only when the trained output is really there
        output = result.get("output") or run.weights().trained
        if exit_code in (0, None) or run.weights().trained:
            return Outcome("succeeded", output=output)
    if result and result.get("status") == "failed":
        return Outcome("failed", error=result.get("error"), hint=result.get("hint"))
    error, hint = describe_exit(exit_code, run.log_tail())
    return Outcome("failed", error=error, hint=hint)
