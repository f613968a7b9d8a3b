"""How a finished job ended, read from its run directory (result.json, exit code, log tail)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.config import rundir
from backend.fsio import read_json_object, tail_text


@dataclass
class Outcome:
    state: str
    error: str | None = None
    hint: str | None = None
    output: str | None = None


def _last_error_line(log_text: str) -> str | None:
    for line in reversed(log_text.splitlines()):
        line = line.strip()
        if line and ("Error" in line or "error" in line or "Exception" in line):
            return line[:500]
    return None


def read_outcome(run_dir: Path, exit_code: int | None) -> Outcome:
    result = read_json_object(run_dir / rundir.RESULT_FILE)
    if result and result.get("status") == "succeeded" and exit_code in (0, None):
        return Outcome("succeeded", output=result.get("output"))
    if result and result.get("status") == "failed":
        return Outcome("failed", error=result.get("error"), hint=result.get("hint"))
    if exit_code is None:
        return Outcome("failed")
    error = _last_error_line(tail_text(run_dir / rundir.LOG_FILE))
    if exit_code < 0 or exit_code in (137, -9):
        message = f"the training process was killed (exit code {exit_code})"
        hint = "this is usually the system running out of memory: lower per_device_batch_size or cutoff_len"
    else:
        message = f"the training process exited with code {exit_code}"
        hint = "see the run's log (GET /api/v1/jobs/{id}/logs) for the full traceback"
    return Outcome("failed", error=f"{message}: {error}" if error else message, hint=hint)
