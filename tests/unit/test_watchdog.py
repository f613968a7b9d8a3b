"""The stall rule: k x the median step time with a bounded minimum, only after the loading phase, only rows of
the current attempt; stall.json written and cleared; env settings bounded."""

from __future__ import annotations

import json

from backend.config.rundir import RunDir
from backend.jobs.watchdog import StallRule, Watchdog


def test_no_verdict_while_loading_or_within_the_threshold():
    rule = StallRule(factor=10, min_s=5)
    assert rule.verdict([], 0, now=1000) is None  # loading: no step logged yet
    assert rule.verdict([100.0], 1, now=1000) is None  # one row: no step time known yet
    assert rule.verdict([100.0, 101.0, 102.0], 3, now=111.9) is None  # 9.9 s idle < 10 x 1 s


def test_verdict_past_k_times_the_median_or_the_minimum():
    rule = StallRule(factor=10, min_s=5)
    # one slow step (an eval, a save) does not move the median: 1 s -> threshold 10 s, 20 s idle is a stall
    stall = rule.verdict([100.0, 101.0, 102.0, 160.0], 4, now=180.0)
    assert stall == {"since": 170.0, "idle_s": 20.0, "median_step_s": 1.0, "threshold_s": 10.0, "last_step": 4,
                     "factor": 10, "min_s": 5}
    # fast steps: the minimum holds
    assert rule.verdict([100.0, 100.1, 100.2], 3, now=104.0) is None
    assert rule.verdict([100.0, 100.1, 100.2], 3, now=106.0)["threshold_s"] == 5.0


def test_env_settings_are_bounded(monkeypatch):
    monkeypatch.setenv("TUNESMITH_STALL_FACTOR", "0.5")
    monkeypatch.setenv("TUNESMITH_STALL_MIN_S", "not a number")
    assert StallRule.from_env() == StallRule(factor=2.0, min_s=300.0)
    monkeypatch.setenv("TUNESMITH_STALL_MIN_S", "1e9")
    assert StallRule.from_env().min_s == 86_400.0


def _events(run: RunDir, times: list[float]) -> None:
    run.file("events.jsonl").write_text("".join(json.dumps({"step": i + 1, "loss": 1.0, "time": t}) + "\n"
                                                for i, t in enumerate(times)))


def test_stall_file_written_and_cleared(tmp_path):
    run = RunDir(tmp_path)
    dog = Watchdog(StallRule(factor=10, min_s=5))
    _events(run, [100.0, 101.0, 102.0])
    stall = dog.check_run(run, now=200.0)
    assert stall["last_step"] == 3 and stall["dump_problem"] == "the training process wrote no engine.pid"
    shown = run.stall()
    assert shown["idle_s"] == 98.0 and shown["stack_dump"] == "" and "log_tail" in shown
    # rows of an earlier attempt (a resumed run keeps them) do not count: the new attempt is loading
    assert dog.check_run(run, now=200.0, since=150.0) is None and run.stall() is None
    _events(run, [100.0, 101.0, 102.0, 199.0])  # a step logged again clears it
    assert dog.check_run(run, now=200.0) is None and run.stall() is None
