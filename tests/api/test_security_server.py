"""A real studio (``python -m backend.cli serve`` subprocess) started with a token: the browser is sent to the
login page, signs in, and the Gradio UI then talks to the API with the token (its header shows the API's
status instead of an authentication error). The API answers 401 without the bearer token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from backend.jobs.runner import free_port
from tests.e2e.studio import CHROMIUM, CHROMIUM_ARGS, stop, tail

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "server-test-token-0123456789abcdef"


@contextmanager
def serve(tmp_path: Path, env_extra: dict[str, str], timeout_s: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """The studio on a free loopback port with ``env_extra``; yields (base URL, process) once health answers."""
    env = dict(os.environ, TUNESMITH_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
               GRADIO_ANALYTICS_ENABLED="False", **env_extra)
    port, log_path = free_port(), tmp_path / "studio.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"studio exited with {proc.returncode}:\n{tail(log_path)}")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"studio not healthy within {timeout_s} s:\n{tail(log_path)}")
            time.sleep(0.3)
        yield base, proc
    finally:
        stop(proc)
        print(f"--- studio log (tail) ---\n{tail(log_path, 3000)}")


@pytest.mark.e2e
def test_browser_signs_in_and_the_ui_reaches_the_api_with_the_token(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    with serve(tmp_path, {"TUNESMITH_TOKEN": TOKEN}) as (base, _):
        assert httpx.get(f"{base}/api/v1/jobs").status_code == 401
        assert httpx.get(f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(base + "/")
            assert page.url.endswith("/login")
            page.fill("#token", "wrong-token")
            page.click("button[type=submit]")
            page.wait_for_selector("text=not the access token")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#app-header >> text=API ok", timeout=60_000)
            assert TOKEN not in page.url
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["tunesmith_session"]["httpOnly"] and TOKEN not in cookies["tunesmith_session"]["value"]
            browser.close()
