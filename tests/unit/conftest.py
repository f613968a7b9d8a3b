"""Shared fixtures for the unit tests of the UI client."""

import pytest

from app.client import TunesmithClient
from backend.api.main import create_app
from backend.settings import Settings
from tests.live_server import serving


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(Settings.from_env(tmp_path_factory.mktemp("ui") / "home"), start_runner=False)
    with serving(app) as url:
        api = TunesmithClient(f"{url}/api/v1", timeout=30)
        try:
            yield api
        finally:
            api.close()
