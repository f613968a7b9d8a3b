"""Test-wide setup.

Starlette's TestClient sends ``Host: testserver``; like Django's test runner, the suite trusts that name as one more
loopback name so in-process API tests need no per-test host configuration. Real servers (the e2e tests,
tests/api/test_security*.py's subprocess checks) get no such name.

``make test PYTEST_JOBS=2`` runs the suite on two pytest-xdist workers (``-n 2 --dist loadfile``): on a 2-core box
most of a training test is one single-threaded process start (imports, model load), so two at a time can use the
second core. Then a test module is one unit of work, so its module fixtures (often trained runs) are built once, by
one worker; the modules that share a trained session fixture (tests/api/export_runs.py) form one unit; and the
units that train or drive a browser are handed out first, so that the many quick modules fill in at the end instead
of one long module running alone. A run in one process keeps the collection order.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from backend.api import security

TESTS = Path(__file__).resolve().parent
SHARED_SESSION_FIXTURES = ("export_runs",)  # session fixtures that train: the modules using one share a worker


@pytest.fixture(autouse=True)
def trust_testclient_host(monkeypatch):
    monkeypatch.setattr(security, "LOOPBACK_HOSTS", security.LOOPBACK_HOSTS | {"testserver"})


def shared_fixture_units() -> dict[str, str]:
    """Test module (path relative to the repo root) -> the shared session fixture it uses, read from the sources:
    the xdist controller schedules by node id and never imports the test modules."""
    units = {}
    for module in TESTS.rglob("test_*.py"):
        text = module.read_text(encoding="utf-8")
        for name in SHARED_SESSION_FIXTURES:
            if name in text:
                units[module.relative_to(TESTS.parent).as_posix()] = name
    return units


def unit_of(nodeid: str, shared: dict[str, str]) -> str:
    module = nodeid.split("::", 1)[0]
    return shared.get(module, module)


def pytest_collection_modifyitems(config, items):
    """Under xdist: heavy units first (any test marked slow or e2e), each unit's tests together, otherwise collection
    order."""
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    shared = shared_fixture_units()
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_of(item.nodeid, shared), []).append(item)
    heavy = {name for name, unit in units.items()
             if any(item.get_closest_marker("slow") or item.get_closest_marker("e2e") for item in unit)}
    items[:] = [item for name in sorted(units, key=lambda name: name not in heavy) for item in units[name]]


if importlib.util.find_spec("xdist") is not None:
    from xdist.scheduler import LoadFileScheduling

    class ModuleUnitScheduling(LoadFileScheduling):
        """--dist loadfile, except that modules sharing a trained session fixture are one unit (loadgroup's
        xdist_group marks would say that, but they rename node ids, which pytest 9 no longer allows)."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.shared = shared_fixture_units()

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid, self.shared)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") == "loadfile":
            return ModuleUnitScheduling(config, log)
        return None
