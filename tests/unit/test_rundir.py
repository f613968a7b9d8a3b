"""RunDir: the one owner of a run directory (config from run.yaml, which weights exist, engine files, stop flag)."""

import json
from pathlib import Path

from backend.config.rundir import RunDir
from backend.config.schema import ResolvedRun, RunConfig


def _run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "job_1")
    run.path.mkdir()
    config = RunConfig(base_model="tiny", datasets=["d"], cutoff_len=256)
    run.write_run(ResolvedRun(run_id="job_1", config=config, model_path="/models/tiny", datasets=[], created_at="t"))
    return run


def test_weights_say_what_is_on_disk(tmp_path):
    run = _run(tmp_path)
    assert run.config.cutoff_len == 256 and run.has_run()
    empty = run.weights()
    assert (empty.base_model, empty.adapter, empty.model, empty.merged, empty.trained) == ("/models/tiny", None, None,
                                                                                           None, None)
    run.adapter_dir.mkdir()
    assert run.weights().adapter is None  # a folder without adapter_config.json is not (yet) an adapter
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    run.merged_dir.mkdir()
    (run.merged_dir / "config.json").write_text("{}")
    weights = run.weights()
    assert weights.trained == "adapter" and weights.adapter == run.adapter_dir and weights.whole_model == run.merged_dir
    assert RunDir(tmp_path / "gone").weights().base_model == ""


def test_facts_stop_flag_and_last_event(tmp_path):
    run = _run(tmp_path)
    facts = run.facts()
    assert (facts.last_event, facts.engine, facts.has_merged, facts.stop_requested) == (None, None, False, False)
    rows = [{"step": 1, "loss": 2.0}, {"step": 1, "eval_loss": 1.0}]
    run.file("events.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"step\": 2, \"lo")
    run.file("engine.json").write_text(json.dumps({"precision": "fp32"}))
    run.file("result.json").write_text(json.dumps({"status": "succeeded", "stopped_early_at_step": 1}))
    run.request_stop("now")
    facts = run.facts()
    assert facts.last_event == {"step": 1, "loss": 2.0} and facts.engine == {"precision": "fp32"}
    assert facts.stop_requested and facts.stopped_early_at_step == 1
    run.clear_stop()
    assert not run.stop_requested()
