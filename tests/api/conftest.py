import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.settings import Settings
from tests.tiny_model import build_tiny_model

ALPACA_ROWS = [
    {"instruction": f"Say the number {i} in words.", "input": "", "output": f"The number is {i}. Thank you!"}
    for i in range(16)
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def settings(tmp_path, tiny_model_dir, monkeypatch) -> Settings:
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(tiny_model_dir, models / "tiny-llama")
    monkeypatch.setenv("TUNESMITH_MODELS_DIR", str(models))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    return Settings.from_env(tmp_path / "home")


@pytest.fixture
def client(settings):
    app = create_app(settings)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def home(tmp_path, monkeypatch) -> Settings:
    """Settings for API tests that need no training runner (datasets, imports)."""
    monkeypatch.delenv("TUNESMITH_IMPORT_ROOT", raising=False)
    return Settings.from_env(tmp_path / "home")


@pytest.fixture
def api(home):
    app = create_app(home, start_runner=False)
    with TestClient(app) as client:
        client.app_state = app.state
        yield client


def wait_for_state(client, job_id, states, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)  # the runner itself ticks every 0.5 s; a 0.5 s poll here added up to 0.5 s more per wait
    logs = client.get(f"/api/v1/jobs/{job_id}/logs").json()["text"]
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s; log tail:\n{logs}")


def where(problem: dict) -> tuple:
    """(location, field) of one dataset problem in an error body: its ``loc`` is [location] or [location, field]."""
    loc = problem["loc"]
    return loc[0], loc[1] if len(loc) > 1 else None


from tests.api.export_runs import export_runs  # noqa: E402,F401  (session fixture: runs shared by export/openai tests)
