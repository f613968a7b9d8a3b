"""Shared pieces of the browser tests: Chromium's launch arguments, the real studio as a subprocess,
screenshots and log tails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from backend.jobs.runner import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("TUNESMITH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEALTH_TIMEOUT_S = 90


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 15 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def serve_process(tmp_path: Path, env_extra: dict[str, str],
                  timeout_s: float = HEALTH_TIMEOUT_S) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m backend.cli serve`` on a free loopback port with its state in ``tmp_path/home`` (``env_extra``
    may override it); yields (base URL, process) once /api/v1/health answers, then stops its process group."""
    env = {**os.environ, "TUNESMITH_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", **env_extra}
    port, log_path = free_port(), tmp_path / "studio.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"studio exited with {proc.returncode} before it was healthy:\n{tail(log_path)}")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"studio did not answer /api/v1/health within {timeout_s} s:\n{tail(log_path)}")
            time.sleep(0.3)
        yield base, proc
    finally:
        stop(proc)
        print(f"--- studio log (tail) ---\n{tail(log_path, 3000)}")


@contextmanager
def serve_studio(tmp_path: Path, models: Path) -> Iterator[str]:
    """The studio with models from ``models``; yields its base URL."""
    with serve_process(tmp_path, {"TUNESMITH_MODELS_DIR": str(models)}) as (base, _):
        yield base


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
