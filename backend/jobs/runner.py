"""Spawns queued jobs as subprocesses (own process group), reaps them, reconciles after a restart.

A background thread ticks every ``poll_interval`` seconds. The spawn function is injectable so tests can
swap the launch command, but the default spawns the real ``accelerate launch`` command.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

import backend
from backend.config import rundir
from backend.config.distributed import DistributedConfig
from backend.config.schema import RunConfig
from backend.engine.distributed import render_launch_files, select_gpus, total_processes, write_launch_files
from backend.engine.launch import accelerate_mixed_precision, build_launch_command
from backend.fsio import atomic_write_json
from backend.jobs.gpus import detect_gpus
from backend.jobs.outcome import read_outcome
from backend.jobs.store import JobRow, JobStore, utc_now

log = logging.getLogger("tunesmith.runner")
PROJECT_ROOT = Path(backend.__file__).resolve().parent.parent


class ProcessHandle(Protocol):
    pid: int

    def poll(self) -> int | None: ...


SpawnFn = Callable[[JobRow, list[int]], ProcessHandle]


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for engine subprocesses: the project importable, no hub access, unbuffered logs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port nobody listens on right now (for the rendezvous of a multi-process job on this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_plan(config: RunConfig, run_dir: Path, gpus: list[int],
                main_process_port: int | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, launch file name -> text) of a job: what spawn_training runs and the preview shows."""
    files = render_launch_files(config, run_dir, gpus, accelerate_mixed_precision(config, has_cuda=bool(gpus)))
    argv = build_launch_command(config, run_dir, gpus=gpus, python=sys.executable, main_process_port=main_process_port)
    return argv, files


def job_gpus(job: JobRow, available: list[int]) -> list[int]:
    """The GPUs a job gets: its ``distributed.gpus`` when set, else all available, cut to ``num_processes``."""
    return select_gpus(DistributedConfig.model_validate(job.config.get("distributed") or {}), available)


def spawn_training(job: JobRow, gpus: list[int]) -> subprocess.Popen:
    """Write the launch files, then start ``accelerate launch ... -m backend.engine train`` for a job, in its
    own process group."""
    run_dir = Path(job.run_dir)
    config = RunConfig.model_validate(job.config)
    dist = config.distributed
    port = None
    if dist.main_process_port is None and dist.num_machines == 1 and total_processes(dist, gpus) > 1:
        port = free_port()  # not accelerate's fixed 29500: two multi-process jobs must not share a rendezvous
    written = write_launch_files(run_dir, config, gpus)
    argv, _ = launch_plan(config, run_dir, gpus, main_process_port=port)
    env = engine_env({"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))} if gpus else {"CUDA_VISIBLE_DEVICES": ""})
    atomic_write_json(run_dir / rundir.LAUNCH_FILE, {"argv": argv, "gpus": gpus, "cwd": str(PROJECT_ROOT),
                                                     "files": sorted(written)})
    log_fh = open(run_dir / rundir.LOG_FILE, "ab")
    try:
        return subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=log_fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    finally:
        log_fh.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as finished
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def kill_process_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left after ``grace_s``."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class _AdoptedProcess:
    """A job process left running by a previous studio process: watched by pid."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        return None if pid_alive(self.pid) else -1


class JobRunner:
    def __init__(self, store: JobStore, *, max_concurrent: int = 1, spawn: SpawnFn = spawn_training,
                 gpu_probe: Callable[[], list[int]] = detect_gpus, poll_interval: float = 0.5):
        self.store = store
        self.max_concurrent = max(1, max_concurrent)
        self.spawn = spawn
        self.gpu_probe = gpu_probe
        self.poll_interval = poll_interval
        self._procs: dict[str, ProcessHandle] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tunesmith-runner", daemon=True)
        self._thread.start()

    def stop(self, kill_running: bool = False) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if kill_running:
            for job_id in list(self._procs):
                self.cancel_running(job_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep the runner alive; the error is in the server log
                log.exception("runner tick failed")
            self._stop.wait(self.poll_interval)

    # -- one scheduling step -----------------------------------------------------------------------
    def tick(self) -> None:
        with self._lock:
            self._reap()
            while len(self._procs) < self.max_concurrent:
                job = self.store.next_queued()
                if job is None or not self._launch(job):
                    break

    def _launch(self, job: JobRow) -> bool:
        gpus = job_gpus(job, self.gpu_probe())  # recorded on the row below
        if not self.store.update(job.id, expect_state=("queued",), state="running", started_at=utc_now(), gpus=gpus):
            return True  # cancelled meanwhile; look at the next one
        try:
            proc = self.spawn(job, gpus)
        except Exception as exc:  # e.g. accelerate missing, run dir gone
            self.store.update(job.id, state="failed", finished_at=utc_now(),
                              error=f"could not start the training process: {exc}",
                              hint="check the studio's server log and that the environment is installed (make studio)")
            return True
        self.store.update(job.id, pid=proc.pid)
        self._procs[job.id] = proc
        log.info("started job %s (pid %s, gpus %s)", job.id, proc.pid, gpus)
        return True

    def _reap(self) -> None:
        for job_id, proc in list(self._procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self._procs[job_id]
            self.finish(job_id, code)

    def finish(self, job_id: str, exit_code: int | None) -> None:
        job = self.store.get(job_id)
        if job is None or job.state not in ("running", "queued"):
            return
        if job.cancel_requested:
            self.store.update(job_id, state="cancelled", finished_at=utc_now(), pid=None,
                              error="cancelled by the user")
            return
        outcome = read_outcome(Path(job.run_dir), exit_code)
        self.store.update(job_id, state=outcome.state, finished_at=utc_now(), pid=None,
                          error=outcome.error, hint=outcome.hint, output=outcome.output)

    # -- cancel / reconcile --------------------------------------------------------------------------
    def cancel_running(self, job_id: str) -> None:
        with self._lock:
            proc = self._procs.get(job_id)
            job = self.store.get(job_id)
            pid = proc.pid if proc else (job.pid if job else None)
        if pid:
            kill_process_group(pid)
        with self._lock:
            if proc is not None and job_id in self._procs:
                if proc.poll() is None and hasattr(proc, "wait"):
                    proc.wait(timeout=10)
                del self._procs[job_id]
            self.finish(job_id, None)

    def reconcile(self) -> None:
        """After a (re)start: adopt job processes that still live, settle those that ended meanwhile."""
        with self._lock:
            for job in self.store.list(states=("running",)):
                if job.id in self._procs:
                    continue
                if job.pid and pid_alive(job.pid) and _is_our_job(job.pid, job.run_dir):
                    self._procs[job.id] = _AdoptedProcess(job.pid)
                    continue
                outcome = read_outcome(Path(job.run_dir), None)
                if outcome.state == "failed" and outcome.error is None:
                    outcome.error = "the studio stopped while this job was running"
                    outcome.hint = "start it again from the Train page (or POST /api/v1/jobs with the same config)"
                self.store.update(job.id, state=outcome.state, finished_at=utc_now(), pid=None,
                                  error=outcome.error, hint=outcome.hint, output=outcome.output)

    def running_job_ids(self) -> list[str]:
        with self._lock:
            return list(self._procs)


def _is_our_job(pid: int, run_dir: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return run_dir.encode() in fh.read()
    except OSError:
        return False
