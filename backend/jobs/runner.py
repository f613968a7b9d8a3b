"""Spawns queued jobs as subprocesses (own process group), reaps them, reconciles after a restart.

A background thread ticks every ``poll_interval`` seconds. The spawn function is injectable so tests can
swap the launch command, but the default spawns the real ``accelerate launch`` command.

GPU slots: one machine with several GPUs runs several jobs at once, each on its own GPUs.

- A job *needs* its ``distributed.gpus`` when set (exactly those), else every visible GPU, cut to
  ``num_processes`` (``backend.jobs.launch.select_gpus``). A job that needs no GPU (no GPU visible, or
  ``gpus: []``) is a CPU job: at most ``max_cpu_jobs`` of them run at once (``TUNESMITH_MAX_CPU_JOBS``, default 1).
- The GPUs a running job holds are recorded on its row (``gpus``) and held until it ends, however it ends
  (succeeded, failed, cancelled, crashed, settled by ``reconcile``); a job adopted after a restart keeps
  holding the GPUs on its row.
- Queue order with safe backfill: queued jobs are looked at oldest first. A job starts when none of the GPUs
  it needs is held by a running job *or* needed by an older job that is still waiting. So a younger job may
  start before an older one ("backfill") only on GPUs the older waiting jobs do not need, and no job waits
  forever: the GPUs it needs are never given to a younger job, so it starts once the older jobs that need them
  have run. (A job needing every GPU therefore blocks younger GPU jobs until it has started.)
- ``max_concurrent`` (``TUNESMITH_MAX_JOBS``), when set, caps the running jobs of every kind.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from backend.config import rundir
from backend.config.schema import RunConfig
from backend.engine_process import PROJECT_ROOT, engine_env
from backend.fsio import atomic_write_json
from backend.jobs.gpus import detect_gpus
from backend.jobs.launch import (
    accelerate_mixed_precision,
    build_launch_command,
    render_launch_files,
    select_gpus,
    total_processes,
    write_launch_files,
)
from backend.jobs.outcome import read_outcome
from backend.jobs.store import JobRow, JobStore, utc_now
from backend.jobs.watchdog import Watchdog

log = logging.getLogger("tunesmith.runner")


class ProcessHandle(Protocol):
    pid: int

    def poll(self) -> int | None: ...


SpawnFn = Callable[[JobRow, list[int]], ProcessHandle]


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
    return select_gpus(job.distributed, available)


def spawn_training(job: JobRow, gpus: list[int]) -> subprocess.Popen:
    """Write the launch files, then start ``accelerate launch ... -m backend.engine train`` for a job, in its
    own process group."""
    run_dir = Path(job.run_dir)
    config = job.run.config  # run.yaml, the copy the engine reads: launch flags and training cannot disagree
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
    """A job process left running by a previous studio process: watched by pid. Not our child, so its exit code
    cannot be known: ``poll`` says only whether it ended (-1), and the run directory tells how (see _reap)."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        return None if pid_alive(self.pid) else -1


@dataclass
class _Running:
    proc: ProcessHandle
    gpus: list[int]  # held until the job ends; [] = a CPU job


@dataclass
class QueuedView:
    """Why a queued job has not started (as of the last tick)."""
    job_id: str
    needs: list[int]
    waiting_for: str


class JobRunner:
    def __init__(self, store: JobStore, *, max_concurrent: int | None = None, max_cpu_jobs: int = 1,
                 spawn: SpawnFn = spawn_training, gpu_probe: Callable[[], list[int]] = detect_gpus,
                 poll_interval: float = 0.5, gpu_probe_ttl_s: float = 30.0):
        self.store = store
        self.max_concurrent = None if max_concurrent is None else max(1, max_concurrent)
        self.max_cpu_jobs = max(1, max_cpu_jobs)
        self.spawn = spawn
        self.gpu_probe = gpu_probe
        self.poll_interval = poll_interval
        self.gpu_probe_ttl_s = gpu_probe_ttl_s
        self._running: dict[str, _Running] = {}
        self._waiting: dict[str, QueuedView] = {}
        self._visible: tuple[float, list[int]] | None = None  # (monotonic time, GPUs) of the last probe
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.watchdog = Watchdog()  # marks running jobs that log no step for too long as stalled

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
            for job_id in list(self._running):
                self.cancel_running(job_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep the runner alive; the error is in the server log
                log.exception("runner tick failed")
            self._stop.wait(self.poll_interval)

    # -- one scheduling step -----------------------------------------------------------------------
    def visible_gpus(self) -> list[int]:
        """The GPUs jobs can be given: ``gpu_probe()``, cached for ``gpu_probe_ttl_s`` (nvidia-smi is not free)."""
        now = time.monotonic()
        if self._visible is None or now - self._visible[0] > self.gpu_probe_ttl_s:
            self._visible = (now, list(self.gpu_probe()))
        return list(self._visible[1])

    def tick(self) -> None:
        """Reap ended jobs, then start every queued job whose GPUs (or CPU slot) are free, by the rule in the
        module docstring; remember why the others wait."""
        with self._lock:
            self._reap()
            if self.watchdog.due():
                self.watchdog.check({j.run_dir: j.started_at for j in self.store.list(states=("running",))})
            queued = [j for j in reversed(self.store.list(states=("queued",))) if not j.cancel_requested]
            waiting: dict[str, QueuedView] = {}
            if not queued:
                self._waiting = waiting
                return
            visible = self.visible_gpus()
            held = {gpu: job_id for job_id, run in self._running.items() for gpu in run.gpus}
            kept: dict[int, str] = {}  # GPU -> the oldest waiting job that needs it
            for job in queued:
                try:
                    needs = job_gpus(job, visible)
                except ValueError as exc:  # a row whose distributed settings no longer validate
                    self.store.update(job.id, expect_state=("queued",), state="failed", finished_at=utc_now(),
                                      error=f"invalid distributed settings: {exc}",
                                      hint="submit the job again with a valid 'distributed' section")
                    continue
                reason = self._blocker(needs, held, kept)
                if reason is None and self._launch(job, needs):
                    held.update({gpu: job.id for gpu in needs})
                    continue
                if reason is not None:
                    waiting[job.id] = QueuedView(job.id, needs, reason)
                    for gpu in needs:
                        kept.setdefault(gpu, job.id)
            self._waiting = waiting

    def _blocker(self, needs: list[int], held: dict[int, str], kept: dict[int, str]) -> str | None:
        """What keeps a job with these needs from starting now, in words; None when nothing does."""
        if self.max_concurrent is not None and len(self._running) >= self.max_concurrent:
            return (f"waiting for a job slot ({len(self._running)} of {self.max_concurrent} running: "
                    f"{', '.join(self._running)}; TUNESMITH_MAX_JOBS sets the limit)")
        if not needs:
            cpu_jobs = [job_id for job_id, run in self._running.items() if not run.gpus]
            if len(cpu_jobs) < self.max_cpu_jobs:
                return None
            return (f"waiting for a CPU slot ({len(cpu_jobs)} of {self.max_cpu_jobs} in use: {', '.join(cpu_jobs)}; "
                    "TUNESMITH_MAX_CPU_JOBS sets the limit)")
        parts = [f"GPU {gpu} ({held[gpu]})" if gpu in held else f"GPU {gpu} (kept for {kept[gpu]}, queued earlier)"
                 for gpu in needs if gpu in held or gpu in kept]
        return "waiting for " + ", ".join(parts) if parts else None

    def _launch(self, job: JobRow, gpus: list[int]) -> bool:
        """Start a job on ``gpus`` (recorded on its row); True when it now runs and holds them."""
        if not self.store.update(job.id, expect_state=("queued",), state="running", started_at=utc_now(), gpus=gpus):
            return False  # cancelled meanwhile
        try:
            proc = self.spawn(job, gpus)
        except Exception as exc:  # e.g. accelerate missing, run dir gone
            self.store.update(job.id, state="failed", finished_at=utc_now(),
                              error=f"could not start the training process: {exc}",
                              hint="check the studio's server log and that the environment is installed (make studio)")
            return False
        self.store.update(job.id, pid=proc.pid)
        self._running[job.id] = _Running(proc, list(gpus))
        log.info("started job %s (pid %s, gpus %s)", job.id, proc.pid, gpus)
        return True

    def _reap(self) -> None:
        for job_id, run in list(self._running.items()):
            code = run.proc.poll()
            if code is None:
                continue
            del self._running[job_id]
            self.finish(job_id, None if isinstance(run.proc, _AdoptedProcess) else code)

    def finish(self, job_id: str, exit_code: int | None) -> None:
        """Record how a job ended; ``exit_code`` None = unknown (adopted, or killed by us), result.json decides."""
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
            run = self._running.get(job_id)
            job = self.store.get(job_id)
            pid = run.proc.pid if run else (job.pid if job else None)
        if pid:
            kill_process_group(pid)
        with self._lock:
            if run is not None and job_id in self._running:
                if run.proc.poll() is None and hasattr(run.proc, "wait"):
                    run.proc.wait(timeout=10)
                del self._running[job_id]  # its GPUs are free for the next tick
            self.finish(job_id, None)

    def reconcile(self) -> None:
        """After a (re)start: adopt job processes that still live (they keep the GPUs on their row), settle
        those that ended meanwhile."""
        with self._lock:
            for job in self.store.list(states=("running",)):
                if job.id in self._running:
                    continue
                if job.pid and pid_alive(job.pid) and _is_our_job(job.pid, job.run_dir):
                    self._running[job.id] = _Running(_AdoptedProcess(job.pid), list(job.gpus))
                    continue
                outcome = read_outcome(Path(job.run_dir), None)
                if outcome.state == "failed" and job.run.result() is None:
                    outcome.error = f"the studio stopped while this job was running, and its process is gone: {outcome.error}"
                    outcome.hint = ("resume it (POST /api/v1/jobs/{id}/resume, or Resume on the Runs page): it continues "
                                    "from its newest checkpoint")
                self.store.update(job.id, state=outcome.state, finished_at=utc_now(), pid=None,
                                  error=outcome.error, hint=outcome.hint, output=outcome.output)

    # -- views -----------------------------------------------------------------------------------------
    def gpu_holders(self) -> dict[int, str]:
        """GPU index -> id of the running job holding it."""
        with self._lock:
            return {gpu: job_id for job_id, run in self._running.items() for gpu in run.gpus}

    def cpu_job_ids(self) -> list[str]:
        """Running jobs that hold no GPU (they use the CPU slots)."""
        with self._lock:
            return [job_id for job_id, run in self._running.items() if not run.gpus]

    def queued_views(self) -> list[QueuedView]:
        """Queued jobs that could not start at the last tick, oldest first, with what they wait for."""
        with self._lock:
            return list(self._waiting.values())

def _is_our_job(pid: int, run_dir: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return run_dir.encode() in fh.read()
    except OSError:
        return False
