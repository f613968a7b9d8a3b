"""Tiny runs for the engine tests: a small messages dataset, run dirs with run.yaml, the engine CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backend.config.rundir import write_resolved_run
from backend.config.schema import DatasetRef, ResolvedRun, RunConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def conversations(n: int = 16) -> list[dict]:
    """Short arithmetic chats, some with a system prompt, some with two exchanges."""
    rows = []
    for i in range(n):
        messages = [{"role": "system", "content": "Answer briefly."}] if i % 3 == 0 else []
        messages += [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
        ]
        if i % 4 == 1:
            messages += [{"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You are welcome."}]
        rows.append({"messages": messages})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def make_run_dir(root: Path, model_dir: Path, data_path: Path | None = None, **overrides) -> Path:
    """Write ``root/run/run.yaml`` for a tiny, fast run (4 steps, cutoff 64) and return the run dir."""
    root.mkdir(parents=True, exist_ok=True)
    data_path = data_path or write_jsonl(root / "data.jsonl", conversations())
    fields = {
        "base_model": str(model_dir),
        "datasets": ["arith"],
        "method": "lora",
        "max_steps": 4,
        "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "cutoff_len": 64,
        "learning_rate": 5e-3,
        "lr_scheduler": "constant",
        "logging_steps": 1,
        **overrides,
    }
    run = ResolvedRun(
        run_id=root.name,
        config=RunConfig.model_validate(fields),
        model_path=str(model_dir),
        datasets=[DatasetRef(id="arith", name="arith", path=str(data_path), num_rows=16)],
    )
    run_dir = root / "run"
    run_dir.mkdir(exist_ok=True)
    write_resolved_run(run_dir, run)
    return run_dir


def run_engine(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``python -m backend.engine ...`` in a subprocess from the repo root."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env["TOKENIZERS_PARALLELISM"] = "false"
    return subprocess.run(
        [sys.executable, "-m", "backend.engine", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def read_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
