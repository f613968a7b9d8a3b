"""A run that cannot work ends with a non-zero exit and result.json {"status": "failed", "error", "hint"}."""

from __future__ import annotations

import errno

import pytest
import torch

from backend.engine.__main__ import main
from backend.engine.failures import OOM_HINT, classify_failure
from backend.engine.recipe import train
from tests.engine.tiny_runs import make_run_dir, read_result, run_engine, write_jsonl

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only failure")


def _assert_failed(run_dir, error_part: str, hint_part: str) -> dict:
    result = read_result(run_dir)
    assert result["status"] == "failed"
    assert error_part in result["error"] and "\n" not in result["error"]
    assert hint_part in result["hint"]
    return result


@no_cuda
def test_fp16_on_cpu_fails_with_hint(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, compute_type="fp16")
    (run_dir / "result.json").write_text('{"status": "succeeded"}')  # left by an earlier attempt
    (run_dir / "events.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    assert train(run_dir) == 1
    assert not (run_dir / "events.jsonl").exists()
    _assert_failed(run_dir, "fp16 needs a CUDA GPU", "compute_type")


def test_freeze_more_layers_than_the_model_has(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, method="freeze", freeze_trainable_layers=5)
    assert train(run_dir) == 1
    _assert_failed(run_dir, "only 2 decoder layers", "at most 2")


def test_dataset_without_assistant_turns_fails_as_bad_data(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "prompts.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}] * 3)
    run_dir = make_run_dir(tmp_path, tiny_model_dir, data_path=data)
    assert train(run_dir) == 1
    _assert_failed(run_dir, "no usable examples", "assistant turns")


@pytest.mark.slow
def test_missing_model_path_fails_in_the_real_subprocess(tmp_path):
    run_dir = make_run_dir(tmp_path, tmp_path / "no-such-model")
    done = run_engine("train", "--run-dir", str(run_dir))
    assert done.returncode != 0
    _assert_failed(run_dir, "base model not found", "prepare-bundled")
    assert "Traceback" in done.stderr


def test_merge_refuses_an_untrained_adapter(tmp_path, tiny_model_dir, capsys):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from backend.config.schema import LoraMethod
    from backend.engine.methods import build_lora_config

    run_dir = make_run_dir(tmp_path, tiny_model_dir)
    untrained = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), build_lora_config(LoraMethod()))
    untrained.save_pretrained(run_dir / "adapter")  # lora_B is all zeros at init
    assert main(["merge", "--run-dir", str(run_dir)]) == 1
    assert "no-op" in capsys.readouterr().err
    assert not (run_dir / "merged").exists()


def test_classify_cuda_oom_and_full_disk():
    error, hint = classify_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert "out of memory" in error and hint == OOM_HINT
    error, hint = classify_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert "No space left" in error and "disk is full" in hint
