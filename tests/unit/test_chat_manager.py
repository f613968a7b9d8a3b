"""ChatManager with a torch-free protocol fake worker: reuse, switch, crash, timeout, close, target resolution."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backend.chat.manager import (
    ChatManager,
    ChatTarget,
    ChatTargetNotFound,
    ChatTargetUnavailable,
)
from backend.chat.worker_process import ChatTimeout, ChatWorker, ChatWorkerError
from backend.config import rundir
from backend.engine_process import build_chat_worker_command
from backend.jobs.runner import pid_alive
from backend.jobs.service import JobNotFound
from backend.jobs.store import JobRow
from backend.settings import Settings

FAKE_WORKER = str(Path(__file__).resolve().parents[1] / "fake_chat_worker.py")
HI = [{"role": "user", "content": "hi"}]


class FakeJobs:
    def __init__(self, *jobs: JobRow):
        self.jobs = {job.id: job for job in jobs}

    def get(self, job_id: str) -> JobRow:
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return self.jobs[job_id]


def make_manager(tmp_path, modes: dict[str, str] | None = None, jobs=None, **kwargs) -> ChatManager:
    """A manager whose workers run tests/fake_chat_worker.py; ``modes`` maps target labels to fake modes."""
    modes = modes or {}
    settings = Settings(home=tmp_path / "home")
    factory = lambda target: ChatWorker([sys.executable, FAKE_WORKER, modes.get(target.label, "echo")])  # noqa: E731
    return ChatManager(settings, jobs or FakeJobs(), worker_factory=factory, **kwargs)


A = ChatTarget("a", "base", "/models/a")
B = ChatTarget("b", "base", "/models/b")


def test_worker_is_reused_then_replaced_on_switch(tmp_path):
    manager = make_manager(tmp_path)
    try:
        assert manager.chat(A, HI)["text"] == "echo: hi"
        pid = manager.worker_pid
        assert manager.chat(A, [{"role": "user", "content": "again"}])["text"] == "echo: again"
        assert manager.worker_pid == pid
        manager.chat(B, HI)
        assert manager.worker_pid != pid and not pid_alive(pid) and manager.current_target == B
    finally:
        manager.close()
    assert manager.worker_pid is None
    with pytest.raises(ChatWorkerError, match="shutting down"):
        manager.chat(A, HI)


def test_crash_is_reported_and_the_next_request_starts_a_new_worker(tmp_path):
    modes = {"a": "crash"}
    manager = make_manager(tmp_path, modes)
    try:
        with pytest.raises(ChatWorkerError, match=r"exit code 3\): RuntimeError: the fake worker fell over"):
            manager.chat(A, HI)
        assert manager.worker_pid is None
        modes["a"] = "echo"
        assert manager.chat(A, HI)["text"] == "echo: hi"
    finally:
        manager.close()


def test_request_error_keeps_the_worker(tmp_path):
    manager = make_manager(tmp_path, {"a": "reply-error"})
    try:
        with pytest.raises(ChatWorkerError, match="prompt too long"):
            manager.chat(A, HI)
        pid = manager.worker_pid
        assert pid and pid_alive(pid)
    finally:
        manager.close()


def test_load_error_carries_the_hint(tmp_path):
    manager = make_manager(tmp_path, {"a": "load-error"})
    with pytest.raises(ChatWorkerError, match=r"could not load the model: OSError: no weights \(check the folder\)"):
        manager.chat(A, HI)
    assert manager.worker_pid is None


def test_timeout_kills_the_worker(tmp_path):
    manager = make_manager(tmp_path, {"a": "slow"}, request_timeout_s=0.5)
    try:
        manager.chat(B, HI)  # warm up another target, then switch to the slow one
        with pytest.raises(ChatTimeout, match="did not answer within 0.5 s"):
            manager.chat(A, HI)
        assert manager.worker_pid is None
    finally:
        manager.close()


def test_worker_command():
    assert build_chat_worker_command("/m", python="py") == ["py", "-m", "backend.engine.chat_worker", "--model-dir", "/m"]
    assert build_chat_worker_command("/m", "/a", python="py")[-2:] == ["--adapter-dir", "/a"]


def _job(tmp_path, job_id: str, state="succeeded", output="adapter") -> JobRow:
    run_dir = tmp_path / "runs" / job_id
    run_dir.mkdir(parents=True)
    (run_dir / rundir.RUN_FILE).write_text(
        "run_id: %s\nmodel_path: %s\ncreated_at: now\ndatasets: []\nconfig: {base_model: base, datasets: [ds]}\n"
        % (job_id, tmp_path / "base"))
    return JobRow(id=job_id, name="my run", state=state, config={}, run_dir=str(run_dir), created_at="now",
                  output=output)


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    return path


def test_job_targets(tmp_path):
    _model_dir(tmp_path / "base")
    lora, full, queued = _job(tmp_path, "job_lora"), _job(tmp_path, "job_full", output="model"), \
        _job(tmp_path, "job_q", state="running", output=None)
    manager = make_manager(tmp_path, jobs=FakeJobs(lora, full, queued))
    with pytest.raises(ChatTargetUnavailable, match="no adapter on disk"):
        manager.resolve(job_id="job_lora")
    adapter = Path(lora.run_dir) / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    target = manager.resolve(job_id="job_lora")
    assert (target.kind, target.model_dir, target.adapter_dir) == ("adapter", str(tmp_path / "base"), str(adapter))
    assert target.label == "my run (job_lora) · adapter"
    _model_dir(Path(lora.run_dir) / "merged")
    assert manager.resolve(job_id="job_lora").kind == "merged"  # a merged model wins over base + adapter

    with pytest.raises(ChatTargetUnavailable, match="no model on disk"):
        manager.resolve(job_id="job_full")
    _model_dir(Path(full.run_dir) / "model")
    assert manager.resolve(job_id="job_full").model_dir == str(Path(full.run_dir) / "model")

    with pytest.raises(ChatTargetUnavailable, match="job_q is running"):
        manager.resolve(job_id="job_q")
    with pytest.raises(ChatTargetNotFound, match="job_missing"):
        manager.resolve(job_id="job_missing")
    with pytest.raises(ChatTargetNotFound, match="unknown model 'nope'"):
        manager.resolve(model="nope")
    with pytest.raises(ValueError):
        manager.resolve()


def test_stream_yields_deltas_then_the_final_reply(tmp_path):
    manager = make_manager(tmp_path)
    try:
        events = list(manager.chat_stream(A, [{"role": "user", "content": "one two"}]))
        deltas = [e["delta"] for e in events if "delta" in e]
        assert deltas == ["echo: ", "one ", "two "]
        assert events[-1] == {"text": "echo: one two", "tokens": 2, "seconds": 0.01, "trimmed_turns": 0}
    finally:
        manager.close()


def test_an_abandoned_stream_is_drained_so_the_next_reply_is_not_stale(tmp_path):
    manager = make_manager(tmp_path, {"a": "slow-stream"})
    try:
        stream = manager.chat_stream(A, [{"role": "user", "content": "a b c d"}])
        assert next(stream) == {"delta": "echo: "}
        pid = manager.worker_pid
        stream.close()  # the client went away mid-reply
        assert manager.chat(A, HI)["text"] == "echo: hi"  # not the tail of the abandoned reply
        assert manager.worker_pid == pid  # and the loaded worker was kept
    finally:
        manager.close()
