"""`tunesmith serve/studio` refuse to expose an unauthenticated studio; `tunesmith token` makes tokens."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.cli import exposure_problem, served_names

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "TUNESMITH_TOKEN"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", ["serve", "studio"])
def test_public_host_without_token_exits_nonzero_saying_how(tmp_path, command):
    result = run_cli("--home", str(tmp_path / "home"), command, "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2, result.stderr
    assert "without an access token" in result.stderr
    assert "TUNESMITH_TOKEN=$(tunesmith token)" in result.stderr and "--no-auth" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was prepared


def test_short_token_is_refused(tmp_path):
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "1", env_extra={"TUNESMITH_TOKEN": "short"})
    assert result.returncode == 2 and "at least 16" in result.stderr


def test_token_command_prints_a_fresh_random_token():
    first, second = run_cli("token"), run_cli("token")
    assert first.returncode == 0 and second.returncode == 0
    token = first.stdout.strip()
    assert len(token) >= 40 and token != second.stdout.strip() and "\n" not in token
    assert "TUNESMITH_TOKEN" in first.stderr


def test_exposure_rules():
    assert exposure_problem("127.0.0.1", None, False) is None  # today's zero-friction start
    assert exposure_problem("localhost", None, False) is None
    assert exposure_problem("::1", None, False) is None
    assert "without an access token" in exposure_problem("0.0.0.0", None, False)
    assert "without an access token" in exposure_problem("192.168.1.5", None, False)
    assert exposure_problem("0.0.0.0", "x" * 32, False) is None
    assert exposure_problem("0.0.0.0", None, True) is None  # --no-auth overrides (and warns loudly)


def test_served_names():
    assert served_names("127.0.0.1") == ()
    assert served_names("Studio.Lan") == ("studio.lan",)
    wildcard = served_names("0.0.0.0")
    assert "127.0.0.1" in wildcard and len(wildcard) >= 2  # this machine's name and interface addresses


def test_standalone_ui_refuses_a_public_host():
    result = subprocess.run([sys.executable, "-m", "app.main", "--host", "0.0.0.0"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "only serves loopback" in result.stderr
