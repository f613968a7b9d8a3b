"""backend.engine_process: the one place that starts engine subprocesses and turns their failure into EngineFailed."""

import sys
from pathlib import Path

import pytest

from backend.engine_process import (
    PROJECT_ROOT,
    EngineTimedOut,
    build_chat_worker_command,
    build_engine_command,
    engine_env,
    parse_engine_failure,
    run_engine,
)
from backend.errors import EngineFailed

FAILING = ("import sys; print('loading...'); print('Traceback ...', file=sys.stderr); "
           "print('error: OSError: no weights in /m', file=sys.stderr); "
           "print('hint: check the folder', file=sys.stderr); sys.exit(1)")


def test_command_lines():
    assert build_engine_command("merge", "--run-dir", Path("/r"), python="py") == [
        "py", "-m", "backend.engine", "merge", "--run-dir", "/r"]
    assert build_chat_worker_command("/m", "/a", python="py") == [
        "py", "-m", "backend.engine.chat_worker", "--model-dir", "/m", "--adapter-dir", "/a"]


def test_env_makes_the_project_importable_and_offline():
    env = engine_env({"CUDA_VISIBLE_DEVICES": ""})
    assert env["PYTHONPATH"].split(":")[0] == str(PROJECT_ROOT) and (PROJECT_ROOT / "backend").is_dir()
    assert env["HF_HUB_OFFLINE"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "" and env["PYTHONUNBUFFERED"] == "1"


def test_failure_lines_become_one_exception():
    exc = parse_engine_failure("a\nerror: first\nerror: last one\nhint: do this\n", 1, "merge")
    assert isinstance(exc, EngineFailed) and exc.status == 422
    assert exc.message == "last one" and exc.hint == "do this"
    assert parse_engine_failure("Killed\n", -9, "merge").message == "Killed"
    assert parse_engine_failure("", 3, "merge").message == "the merge process exited with code 3 and said nothing"


def test_run_engine_captures_or_logs(tmp_path):
    assert run_engine([sys.executable, "-c", "print('{\"ok\": 1}')"], what="x", timeout_s=30) == '{"ok": 1}\n'
    with pytest.raises(EngineFailed) as caught:
        run_engine([sys.executable, "-c", FAILING], what="x", timeout_s=30)
    assert caught.value.message == "OSError: no weights in /m" and caught.value.hint == "check the folder"
    log = tmp_path / "x.log"
    with pytest.raises(EngineFailed, match="no weights"):
        run_engine([sys.executable, "-c", FAILING], what="x", timeout_s=30, log_path=log)
    assert "loading..." in log.read_text() and "hint: check the folder" in log.read_text()


def test_run_engine_times_out_with_its_hint():
    with pytest.raises(EngineTimedOut, match="the x did not finish within 1 s") as caught:
        run_engine([sys.executable, "-c", "import time; time.sleep(20)"], what="x", timeout_s=1, timeout_hint="less")
    assert caught.value.status == 503 and caught.value.hint == "less"
