"""Test-wide setup. Starlette's TestClient sends ``Host: testserver``; like Django's test runner, the suite trusts
that name as one more loopback name so in-process API tests need no per-test host configuration. Real servers
(the e2e tests, tests/api/test_security*.py's subprocess checks) get no such name."""

import pytest

from backend.api import security


@pytest.fixture(autouse=True)
def trust_testclient_host(monkeypatch):
    monkeypatch.setattr(security, "LOOPBACK_HOSTS", security.LOOPBACK_HOSTS | {"testserver"})
