"""The studio UI builds offline, stays torch-free, and its Train form follows the run-config schema."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("gradio")


def test_build_app_constructs_without_torch_or_network() -> None:
    # A fresh interpreter: the web process must never import torch & co. Port 9 (discard) has no API:
    # building must not call it.
    code = textwrap.dedent(
        """
        import sys
        from app.main import build_app
        import gradio as gr
        demo = build_app("http://127.0.0.1:9/api/v1")
        assert isinstance(demo, gr.Blocks), type(demo)
        assert demo.title == "Tunesmith"
        ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
        needed = {"ds-file", "ds-upload", "ds-status", "ds-table", "ds-preview", "train-model", "train-datasets",
                  "train-method", "train-start", "train-status", "runs-table", "runs-job", "loss-plot", "runs-logs",
                  "runs-cancel", "export-job", "adapter-prepare", "adapter-download", "merge-start",
                  "merged-download", "merged-files", "train-start-from", "train-config-load", "train-config-download",
                  "train-dist-backend", "runs-compare-select", "compare-loss-plot", "compare-eval-plot", "compare-table"}
        assert needed <= ids, sorted(needed - ids)
        heavy = sorted(m for m in ("torch", "transformers", "peft", "trl", "accelerate") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


def test_form_metadata_comes_from_the_schema() -> None:
    from app.form import field_meta
    from backend.config.schema import LoraMethod, RunConfig

    rank = field_meta(LoraMethod, "rank")
    assert rank.kind == "int" and rank.default == LoraMethod.model_fields["rank"].default
    assert (rank.ge, rank.le) == (1, 1024)
    assert rank.description in rank.info and "≥ 1" in rank.info
    compute = field_meta(RunConfig, "compute_type")
    assert compute.kind == "choice" and "bf16" in compute.choices and compute.default == "auto"
    max_steps = field_meta(RunConfig, "max_steps")
    assert max_steps.optional and max_steps.default is None


def test_build_config_from_form_values_is_a_valid_run_config() -> None:
    from app.form import build_config, validate_config

    config = build_config(
        {
            "base_model": "tiny-llama",
            "datasets": ["ds_1"],
            "method": "qlora",
            "method.rank": 16.0,  # gr.Number may hand floats
            "method.alpha": 32,
            "method.targets": ["q_proj", "v_proj"],
            "method.bits": "4",
            "method.trainable_layers": 3,  # belongs to freeze: must not leak into a qlora body
            "learning_rate": "",  # blank optional -> schema default
            "max_steps": "6",
            "max_samples": "0",  # 0 where the minimum is 1 -> none
            "per_device_batch_size": 2,
            "num_epochs": 1,
        }
    )
    assert config["method"] == {"name": "qlora", "rank": 16, "alpha": 32.0, "targets": ["q_proj", "v_proj"], "bits": 4}
    assert config["max_steps"] == 6 and config["num_epochs"] == 1.0
    assert "learning_rate" not in config and "max_samples" not in config
    assert list(config)[:3] == ["base_model", "datasets", "method"]
    assert validate_config(config) == []


def test_validate_config_names_the_field() -> None:
    from app.form import build_config, validate_config

    problems = validate_config(build_config({"base_model": "m", "datasets": ["d"], "method": "lora", "method.rank": 0}))
    assert any(p.startswith("method.lora.rank") for p in problems), problems
    problems = validate_config(build_config({"base_model": "m", "datasets": ["d"], "max_steps": "lots"}))
    assert any(p.startswith("max_steps") for p in problems), problems
