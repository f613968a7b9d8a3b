"""What the jobs side's stall watchdog (backend/jobs/watchdog.py) needs from a training process: its pid
(``engine.pid``) and a Python stack dump of every thread on SIGUSR1 (faulthandler, written by C code, so it works
while the interpreter is stuck in a step), appended to ``stacks.txt``. Plus a test hook: with
``TUNESMITH_TEST_HANG_AT_STEP=N`` the run hangs at the start of step N (for ``TUNESMITH_TEST_HANG_S`` seconds,
default 3600), so a test can watch a job stall."""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from pathlib import Path

from backend.config import rundir

HANG_STEP_ENV = "TUNESMITH_TEST_HANG_AT_STEP"
HANG_SECONDS_ENV = "TUNESMITH_TEST_HANG_S"

_dump_file = None  # kept open for the process's life: faulthandler writes to its file descriptor


def install_stack_dump(run_dir: Path) -> None:
    """Register the SIGUSR1 stack dump into ``stacks.txt`` and write ``engine.pid`` (the main process only: the
    one the watchdog signals)."""
    global _dump_file
    if not hasattr(signal, "SIGUSR1"):  # not on Windows; the watchdog then reports the stall without a dump
        return
    _dump_file = open(run_dir / rundir.STACKS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
    faulthandler.register(signal.SIGUSR1, file=_dump_file, all_threads=True)
    (run_dir / rundir.PID_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")


def hang_callback():
    """A TrainerCallback that hangs at step ``TUNESMITH_TEST_HANG_AT_STEP``, or None when the variable is unset."""
    step = os.environ.get(HANG_STEP_ENV)
    if not step:
        return None
    from transformers import TrainerCallback

    hang_at, seconds = int(step), float(os.environ.get(HANG_SECONDS_ENV, "3600"))

    class HangForTest(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == hang_at:
                print(f"test hook: hanging at step {hang_at} for {seconds:.0f} s ({HANG_STEP_ENV})", flush=True)
                _hang_for_test(seconds)

    return HangForTest()


def _hang_for_test(seconds: float) -> None:
    """The frame a stack dump of a deliberately hung run names."""
    time.sleep(seconds)
