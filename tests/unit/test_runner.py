"""The job runner's state machine, with small real child processes standing in for the engine."""

import json
import subprocess
import sys
import time
from pathlib import Path

from backend.jobs.runner import JobRunner, kill_process_group, pid_alive
from backend.jobs.store import JobRow, JobStore, utc_now


def _job(tmp_path: Path, job_id: str) -> JobRow:
    run_dir = tmp_path / "runs" / job_id
    run_dir.mkdir(parents=True)
    return JobRow(id=job_id, name=job_id, state="queued", config={"datasets": ["d"]}, run_dir=str(run_dir),
                  created_at=utc_now())


def _script_spawn(script: str):
    def spawn(job: JobRow, gpus):
        return subprocess.Popen([sys.executable, "-c", script, job.run_dir], start_new_session=True)
    return spawn


def _wait_state(store: JobStore, runner: JobRunner, job_id: str, states, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.tick()
        job = store.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} stuck in {store.get(job_id).state}")


WRITE_OK = ("import json,sys,pathlib; d=pathlib.Path(sys.argv[1]); "
            "(d/'result.json').write_text(json.dumps({'status':'succeeded','output':'adapter'}))")


def test_success_is_read_from_result_json(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    store.insert(_job(tmp_path, "job_a"))
    runner = JobRunner(store, spawn=_script_spawn(WRITE_OK), gpu_probe=lambda: [])
    job = _wait_state(store, runner, "job_a", ("succeeded", "failed"))
    assert job.state == "succeeded" and job.output == "adapter" and job.finished_at


def test_crash_without_result_is_failed_with_the_error_line(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    job = _job(tmp_path, "job_b")
    store.insert(job)

    def spawn(job, gpus):
        log = open(Path(job.run_dir) / "stdout.log", "wb")
        return subprocess.Popen([sys.executable, "-c", "raise ValueError('bad thing happened')"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    runner = JobRunner(store, spawn=spawn, gpu_probe=lambda: [])
    done = _wait_state(store, runner, "job_b", ("succeeded", "failed"))
    assert done.state == "failed"
    assert "exited with code 1" in done.error and "ValueError: bad thing happened" in done.error
    assert done.hint


def test_engine_reported_failure_keeps_its_reason_and_hint(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    store.insert(_job(tmp_path, "job_c"))
    script = ("import json,sys,pathlib; d=pathlib.Path(sys.argv[1]); (d/'result.json').write_text(json.dumps("
              "{'status':'failed','error':'CUDA out of memory','hint':'lower per_device_batch_size'})); sys.exit(1)")
    runner = JobRunner(store, spawn=_script_spawn(script), gpu_probe=lambda: [])
    done = _wait_state(store, runner, "job_c", ("failed",))
    assert (done.error, done.hint) == ("CUDA out of memory", "lower per_device_batch_size")


def test_queue_runs_one_at_a_time_in_order(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    for jid in ("job_1", "job_2"):
        store.insert(_job(tmp_path, jid))
        time.sleep(1.1)  # created_at has second resolution
    script = "import time; time.sleep(1.0); " + WRITE_OK.replace("import json,sys,pathlib; ", "import json,sys,pathlib;")
    runner = JobRunner(store, spawn=_script_spawn(script), gpu_probe=lambda: [], max_concurrent=1)
    runner.tick()
    assert store.get("job_1").state == "running" and store.get("job_2").state == "queued"
    _wait_state(store, runner, "job_2", ("succeeded",))
    assert store.get("job_1").state == "succeeded"


def test_cancel_kills_the_whole_process_group(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    store.insert(_job(tmp_path, "job_k"))
    pidfile = tmp_path / "child.pid"

    def spawn(job, gpus):  # a parent that starts a grandchild, like accelerate launch does
        return subprocess.Popen(["bash", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], start_new_session=True)

    runner = JobRunner(store, spawn=spawn, gpu_probe=lambda: [])
    runner.tick()
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    store.update("job_k", cancel_requested=True)
    runner.cancel_running("job_k")
    job = store.get("job_k")
    assert job.state == "cancelled"
    time.sleep(0.2)
    assert not pid_alive(grandchild)


def test_reconcile_after_restart(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    dead, finished, alive = (_job(tmp_path, j) for j in ("job_dead", "job_fin", "job_alive"))
    for job in (dead, finished, alive):
        store.insert(job)
    (Path(finished.run_dir) / "result.json").write_text(json.dumps({"status": "succeeded", "output": "adapter"}))
    proc = subprocess.Popen(["bash", "-c", "sleep 30; : \"$0\"", alive.run_dir], start_new_session=True)
    store.update("job_dead", state="running", pid=999_999)
    store.update("job_fin", state="running", pid=999_998)
    store.update("job_alive", state="running", pid=proc.pid)
    try:
        runner = JobRunner(store, spawn=_script_spawn(WRITE_OK), gpu_probe=lambda: [])
        runner.reconcile()
        assert store.get("job_dead").state == "failed"
        assert "stopped while this job was running" in store.get("job_dead").error
        assert store.get("job_fin").state == "succeeded"
        assert store.get("job_alive").state == "running" and runner.cpu_job_ids() == ["job_alive"]
    finally:
        kill_process_group(proc.pid, grace_s=1)
        proc.wait()
    runner.tick()
    assert store.get("job_alive").state == "failed"


def test_adopted_job_that_then_finishes_takes_its_outcome_from_the_run_dir(tmp_path):
    # issue 10 item 3: an adopted process reports no exit code; result.json and adapter/ say it succeeded
    store = JobStore(tmp_path / "db.sqlite")
    job = _job(tmp_path, "job_adopt")
    store.insert(job)
    script = ("import json,sys,time,pathlib; d=pathlib.Path(sys.argv[1]); time.sleep(1.5); (d/'adapter').mkdir(); "
              "(d/'adapter'/'adapter_config.json').write_text('{}'); "
              "(d/'result.json').write_text(json.dumps({'status':'succeeded','output':'adapter'}))")
    proc = subprocess.Popen([sys.executable, "-c", script, job.run_dir], start_new_session=True)
    store.update("job_adopt", state="running", pid=proc.pid)
    try:
        runner = JobRunner(store, spawn=_script_spawn(WRITE_OK), gpu_probe=lambda: [])
        runner.reconcile()
        assert store.get("job_adopt").state == "running" and runner.cpu_job_ids() == ["job_adopt"]
        done = _wait_state(store, runner, "job_adopt", ("succeeded", "failed"))
        assert (done.state, done.output, done.error) == ("succeeded", "adapter", None)
    finally:
        proc.wait(timeout=30)


def test_a_killed_process_is_described_by_its_signal_and_last_log_line(tmp_path):
    store = JobStore(tmp_path / "db.sqlite")
    store.insert(_job(tmp_path, "job_k9"))

    def spawn(job, gpus):
        log = open(Path(job.run_dir) / "stdout.log", "wb")
        script = "import os, signal; print('step 3 of 10', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
        return subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    runner = JobRunner(store, spawn=spawn, gpu_probe=lambda: [])
    job = _wait_state(store, runner, "job_k9", ("succeeded", "failed"))
    assert job.error == "the training process was killed by SIGKILL (exit code -9); its log ends with: step 3 of 10"
    assert "kill -9" in job.hint and "out-of-memory killer" in job.hint


def test_exit_descriptions_say_what_is_known():
    from backend.jobs.outcome import describe_exit

    assert describe_exit(137, "")[0] == "the training process was killed by SIGKILL (exit code 137); its log is empty"
    error, hint = describe_exit(-15, "x\nRuntimeError: boom\n")
    assert error.endswith("killed by SIGTERM (exit code -15); its log ends with: RuntimeError: boom")
    assert "request to stop" in hint and "memory" not in hint
    assert describe_exit(2, "usage")[0] == "the training process exited with code 2; its log ends with: usage"
    assert "exit code unknown" in describe_exit(None, "")[0]
