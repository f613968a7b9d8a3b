"""Shared fixtures for the unit tests of the UI client."""

import threading
import time

import pytest
import uvicorn

from app.client import TunesmithClient
from backend.api.main import create_app
from backend.jobs.runner import free_port
from backend.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(Settings.from_env(tmp_path_factory.mktemp("ui") / "home"), start_runner=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    api = TunesmithClient(f"http://127.0.0.1:{port}/api/v1", timeout=30)
    try:
        yield api
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=15)
