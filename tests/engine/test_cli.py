"""The engine CLI stays import-light: ``backend.engine`` and ``--help`` never load torch."""

from __future__ import annotations

import subprocess
import sys

from tests.engine.tiny_runs import REPO_ROOT


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_importing_the_engine_package_does_not_import_torch():
    done = _python("import sys, backend.engine; assert 'torch' not in sys.modules, 'torch imported'")
    assert done.returncode == 0, done.stderr


def test_help_lists_every_command_without_torch():
    done = _python(
        "import sys; from backend.engine.__main__ import build_parser; "
        "print(build_parser().format_help()); assert 'torch' not in sys.modules"
    )
    assert done.returncode == 0, done.stderr
    for command in ("train", "merge", "prepare-bundled", "preview", "evaluate"):
        assert command in done.stdout
