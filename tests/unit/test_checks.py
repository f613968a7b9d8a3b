"""Submit-time hardware checks: GPUs as nvidia-smi reports them, and bf16 refused on pre-Ampere GPUs."""

from __future__ import annotations

import os
import stat

import pytest

from backend.config.schema import RunConfig
from backend.jobs.checks import JobConfigError, check_hardware
from backend.jobs.gpus import GpuInfo, parse_gpu_csv, query_gpus

T4 = GpuInfo(0, "Tesla T4", 15360, 0, (7, 5))
H100 = GpuInfo(1, "NVIDIA H100 80GB HBM3", 81559, 0, (9, 0))


def config(**fields) -> RunConfig:
    return RunConfig(base_model="m", datasets=["d"], **fields)


def test_nvidia_smi_rows_are_parsed_with_and_without_compute_capability():
    rows = parse_gpu_csv("0, Tesla T4, 15360, 5, 7.5\n1, NVIDIA H100 80GB HBM3, 81559, 0, 9.0\n2, Old, 100, 0, [N/A]\n")
    assert rows == [GpuInfo(0, "Tesla T4", 15360, 5, (7, 5)), H100,
                    GpuInfo(2, "Old", 100, 0, None)]
    assert parse_gpu_csv("0, Tesla T4, 15360, 5\n") == [GpuInfo(0, "Tesla T4", 15360, 5, None)]


@pytest.mark.parametrize("compute_type", ["bf16", "pure_bf16"])
def test_bf16_on_a_pre_ampere_gpu_is_refused_with_what_to_use(compute_type):
    with pytest.raises(JobConfigError) as err:
        check_hardware(config(compute_type=compute_type), [0, 1], gpu_details=lambda: [T4, H100])
    assert err.value.loc == ("compute_type",)
    assert "GPU 0 (Tesla T4, compute capability 7.5)" in err.value.message and "'fp16'" in err.value.message
    # the job asked only for the H100: fine
    check_hardware(config(compute_type=compute_type, distributed={"gpus": [1]}), [0, 1], gpu_details=lambda: [T4, H100])
    # auto picks fp16 there by itself, and the details are not even asked for
    check_hardware(config(compute_type="auto"), [0], gpu_details=lambda: pytest.fail("not needed"))


def test_cpu_only_machine_refuses_what_only_a_gpu_can_run():
    for fields, loc in (({"compute_type": "fp16"}, "compute_type"), ({"use_liger_kernel": "on"}, "use_liger_kernel"),
                        ({"attn_implementation": "tunesmith_varlen"}, "attn_implementation")):
        with pytest.raises(JobConfigError) as err:
            check_hardware(config(**fields), [], gpu_details=list)
        assert err.value.loc == (loc,) and "has none" in err.value.message


@pytest.mark.parametrize("fields", [
    {"method": {"name": "qlora", "bits": 4}}, {"method": {"name": "qlora", "bits": 8}},
    {"optimizer": "adamw_8bit"}, {"optimizer": "paged_adamw_8bit"},
    {"distributed": {"backend": "deepspeed", "zero_stage": 3, "num_processes": 2}},
    {"distributed": {"backend": "deepspeed", "zero_stage": 2, "offload_optimizer": True, "num_processes": 2}},
    {"distributed": {"backend": "deepspeed", "zero_stage": 3, "offload_optimizer": True, "offload_params": True,
                     "num_processes": 2}},
    {"distributed": {"backend": "fsdp", "num_processes": 2}},
    {"distributed": {"backend": "fsdp", "num_processes": 2}, "method": "full"},
])
def test_cpu_only_machine_accepts_what_the_cpu_can_train(fields):
    check_hardware(config(**fields), [], gpu_details=lambda: pytest.fail("not needed"))


def test_fsdp_on_one_cpu_process_is_refused_because_it_could_not_shard():
    with pytest.raises(JobConfigError) as err:
        check_hardware(config(distributed={"backend": "fsdp"}), [], gpu_details=list)
    assert err.value.loc == ("distributed", "num_processes") and "2 or more" in err.value.message


def test_fsdp_param_offload_is_refused_without_a_gpu_and_allowed_with_one():
    fsdp_offload = config(distributed={"backend": "fsdp", "offload_params": True, "num_processes": 2})
    with pytest.raises(JobConfigError) as err:
        check_hardware(fsdp_offload, [], gpu_details=list)
    assert err.value.loc == ("distributed", "offload_params") and "turn offload_params off" in err.value.message
    check_hardware(config(distributed={"backend": "fsdp", "offload_params": True}), [0, 1], gpu_details=list)


@pytest.mark.parametrize("fields, package, loc, command", [
    ({"method": "qlora"}, "bitsandbytes", ("method",), "pip install bitsandbytes"),
    ({"optimizer": "adamw_8bit"}, "bitsandbytes", ("optimizer",), "pip install bitsandbytes"),
    ({"distributed": {"backend": "deepspeed", "num_processes": 2}}, "deepspeed", ("distributed", "backend"),
     "DS_BUILD_OPS=0 pip install deepspeed"),
])
def test_a_missing_package_is_refused_naming_its_install_command(fields, package, loc, command, monkeypatch):
    from backend.jobs import checks

    real = checks.installed
    monkeypatch.setattr(checks, "installed", lambda name: name != package and real(name))
    with pytest.raises(JobConfigError) as err:
        check_hardware(config(**fields), [], gpu_details=list)
    assert err.value.loc == loc and command in err.value.message


def test_query_gpus_reads_a_real_nvidia_smi_and_falls_back_for_old_drivers(tmp_path, monkeypatch):
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n"
                      'case "$1" in *compute_cap*) echo "Field compute_cap is not a valid field" >&2; exit 2;; esac\n'
                      'echo "0, Tesla V100, 16384, 10"\necho "1, Tesla V100, 16384, 20"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert query_gpus() == [GpuInfo(1, "Tesla V100", 16384, 20, None)]
