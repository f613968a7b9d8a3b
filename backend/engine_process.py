"""Starting ``python -m backend.engine ...`` from the web side (and the CLI), and reading how it failed.

The only module outside ``backend/engine`` that writes ``-m backend.engine`` command lines: the runner's
``accelerate launch`` argv ends with :func:`engine_module_args`; merge, evaluate, preview and bundled-model
preparation run through :func:`run_engine`; the chat worker's argv comes from :func:`build_chat_worker_command`.
Every engine failure reaches callers as one exception, :class:`backend.errors.EngineFailed`, carrying the engine's
own ``error:``/``hint:`` lines (``backend.engine.__main__`` prints them last on failure). Imports no torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import backend
from backend.errors import EngineFailed

PROJECT_ROOT = Path(backend.__file__).resolve().parent.parent
ENGINE_MODULE = "backend.engine"
CHAT_WORKER_MODULE = "backend.engine.chat_worker"


class EngineTimedOut(EngineFailed):
    """The engine did not finish within its time limit (it was killed). 503: the request was fine, the machine
    could not answer it in time; the hint says how to ask for less."""

    status = 503


def engine_module_args(action: str, *args: str) -> list[str]:
    """``-m backend.engine ACTION ARGS...``: the tail of every engine command line, after the interpreter or
    after ``accelerate launch``'s own flags."""
    return ["-m", ENGINE_MODULE, action, *map(str, args)]


def build_engine_command(action: str, *args: str | Path, python: str = sys.executable) -> list[str]:
    """argv for one single-process engine action, e.g. ``build_engine_command("merge", "--run-dir", d)``."""
    return [python, *engine_module_args(action, *map(str, args))]


def build_chat_worker_command(model_dir: str | Path, adapter_dir: str | Path | None = None,
                              python: str = sys.executable) -> list[str]:
    """argv of the long-lived chat worker (its own module: it stays up and answers JSON lines)."""
    argv = [python, "-m", CHAT_WORKER_MODULE, "--model-dir", str(model_dir)]
    return argv + (["--adapter-dir", str(adapter_dir)] if adapter_dir else [])


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for engine subprocesses: the project importable, no hub access, unbuffered logs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def parse_engine_failure(output: str, returncode: int, what: str) -> EngineFailed:
    """The engine's last ``error:``/``hint:`` lines; without them (a crash before main caught it) its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    error = next((ln.removeprefix("error:").strip() for ln in reversed(lines) if ln.startswith("error:")), None)
    hint = next((ln.removeprefix("hint:").strip() for ln in reversed(lines) if ln.startswith("hint:")), None)
    if error is None:
        error = lines[-1] if lines else f"the {what} process exited with code {returncode} and said nothing"
    return EngineFailed(error, hint=hint)


def run_engine(argv: list[str], *, what: str, timeout_s: float, log_path: Path | None = None,
               env_extra: dict[str, str] | None = None, timeout_hint: str | None = None) -> str:
    """Run an engine command to completion and return its stdout ('' when it went to ``log_path``).

    With ``log_path`` stdout and stderr go to that file (kept for the user); otherwise both are captured and
    stdout is returned (the preview prints its JSON there). Raises :class:`EngineTimedOut` when it runs past
    ``timeout_s`` and :class:`EngineFailed` (the engine's own error and hint) when it exits non-zero.
    """
    env = engine_env(env_extra)
    try:
        if log_path is not None:
            with open(log_path, "w", encoding="utf-8") as log:
                proc = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, text=True, timeout=timeout_s, check=False)
            output, stdout = Path(log_path).read_text(encoding="utf-8", errors="replace"), ""
        else:
            proc = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
            output, stdout = proc.stdout + "\n" + proc.stderr, proc.stdout
    except subprocess.TimeoutExpired:
        raise EngineTimedOut(f"the {what} did not finish within {timeout_s:.0f} s", hint=timeout_hint) from None
    if proc.returncode != 0:
        raise parse_engine_failure(output, proc.returncode, what)
    return stdout
