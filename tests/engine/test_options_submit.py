"""Submit-time checks for options this machine cannot run: a clear 422-style error, not a failed job later."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from backend.config.schema import RunConfig
from backend.jobs.service import JobConfigError, JobService
from backend.settings import Settings


@pytest.fixture
def service(tmp_path, tiny_model_dir):
    data = tmp_path / "data.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    record = SimpleNamespace(id="ds_1", name="greet", path=data, num_rows=1, format="messages")
    registry = SimpleNamespace(get=lambda ref: record if ref in ("ds_1", "greet") else None)
    runner = SimpleNamespace(gpu_probe=lambda: [])  # this CPU machine: no GPU
    return JobService(Settings.from_env(tmp_path / "home"), store=None, runner=runner, registry=registry)


def _config(tiny_model_dir, **fields) -> RunConfig:
    return RunConfig.model_validate({"base_model": str(tiny_model_dir), "datasets": ["greet"], **fields})


@pytest.mark.parametrize("optimizer", ["adamw_8bit", "paged_adamw_8bit"])
def test_8bit_optimizers_resolve_without_a_gpu(service, tiny_model_dir, optimizer):
    # bitsandbytes has CPU kernels (tests/engine/test_quantized_cpu.py trains with both)
    assert service.resolve(_config(tiny_model_dir, optimizer=optimizer), "job_x").config.optimizer == optimizer


def test_flash_attention_is_refused_without_flash_attn(service, tiny_model_dir):
    with pytest.raises(JobConfigError) as err:
        service.resolve(_config(tiny_model_dir, attn_implementation="flash_attention_2"), "job_x")
    assert err.value.loc == ("attn_implementation",) and "sdpa" in err.value.message


def test_runnable_options_resolve(service, tiny_model_dir):
    config = _config(tiny_model_dir, optimizer="adafactor", attn_implementation="auto", stage="pt",
                     lr_scheduler="warmup_stable_decay", gradient_checkpointing=True)
    resolved = service.resolve(config, "job_x")
    assert resolved.config.datasets == ["ds_1"] and resolved.config.gradient_checkpointing == "on"


@pytest.mark.parametrize("fields, loc, words", [
    ({"use_liger_kernel": "on"}, ("use_liger_kernel",), ["CUDA GPU", "'auto'"]),
    ({"use_liger_kernel": True}, ("use_liger_kernel",), ["CUDA GPU"]),  # a bool means on
    ({"attn_implementation": "tunesmith_varlen"}, ("attn_implementation",), ["CUDA GPU", "'sdpa'"]),
])
def test_gpu_kernels_are_refused_without_a_gpu(service, tiny_model_dir, fields, loc, words):
    with pytest.raises(JobConfigError) as err:
        service.resolve(_config(tiny_model_dir, **fields), "job_x")
    assert err.value.loc == loc and all(w in err.value.message for w in words), err.value.message


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is not None, reason="liger-kernel is installed here")
def test_liger_on_a_gpu_machine_without_the_package_says_how_to_install_it(service, tiny_model_dir):
    service.runner = SimpleNamespace(gpu_probe=lambda: [0])
    with pytest.raises(JobConfigError) as err:
        service.resolve(_config(tiny_model_dir, use_liger_kernel="on"), "job_x")
    assert err.value.loc == ("use_liger_kernel",) and "pip install liger-kernel" in err.value.message


@pytest.mark.parametrize("fields, words", [
    ({"compute_type": "pure_bf16", "distributed": {"backend": "deepspeed"}}, ["pure_bf16", "DeepSpeed", "'bf16'"]),
    ({"batch_tokens": 4096, "packing": False}, ["batch_tokens", "packing"]),
    ({"attn_implementation": "tunesmith_varlen", "compute_type": "fp32"}, ["bf16/fp16", "sdpa"]),
])
def test_impossible_combinations_are_schema_errors(tiny_model_dir, fields, words):
    with pytest.raises(ValidationError) as err:
        _config(tiny_model_dir, **fields)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_new_engine_options_resolve_on_cpu(service, tiny_model_dir):
    config = _config(tiny_model_dir, compute_type="pure_bf16", use_liger_kernel="auto", batch_tokens=2048)
    resolved = service.resolve(config, "job_x")
    assert (resolved.config.compute_type, resolved.config.batch_tokens) == ("pure_bf16", 2048)
