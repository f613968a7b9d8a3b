"""DistributedConfig validation, the DeepSpeed/FSDP launch files, and accelerate's own reading of them."""

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from backend.config.distributed import DistributedConfig
from backend.config.schema import RunConfig
from backend.jobs.launch import (
    build_accelerate_config,
    build_deepspeed_config,
    build_launch_command,
    effective_backend,
    render_launch_files,
    select_gpus,
    write_launch_files,
)


def cfg(**dist) -> RunConfig:
    return RunConfig(base_model="m", datasets=["d"], distributed=dist)


def test_defaults_keep_todays_behaviour():
    dist = DistributedConfig()
    assert dist.backend == "auto" and dist.num_processes is None and dist.gpus is None and dist.num_machines == 1
    assert effective_backend(dist, []) == "none" and effective_backend(dist, [0]) == "none"
    assert effective_backend(dist, [0, 1]) == "ddp"
    assert effective_backend(DistributedConfig(num_processes=2), []) == "ddp"
    assert render_launch_files(cfg(), Path("/r"), [0, 1]) == {}  # DDP needs flags only
    assert "distributed" in RunConfig.model_json_schema()["properties"]


@pytest.mark.parametrize("bad", [
    {"backend": "deepspeed", "zero_stage": 2, "offload_params": True},  # param offload is ZeRO-3 only
    {"backend": "ddp", "offload_params": True},
    {"backend": "deepspeed", "zero_stage": 0, "offload_optimizer": True},
    {"backend": "fsdp", "offload_optimizer": True},
    {"num_machines": 2},  # no main_process_ip
    {"num_machines": 2, "machine_rank": 2, "main_process_ip": "10.0.0.1"},
    {"gpus": [0, 0]},
    {"gpus": [-1]},
    {"gpus": []},
    {"gpus": [0], "num_processes": 2},
    {"backend": "megatron"},
    {"zero_stage": 4},
    {"num_processes": 0},
    {"main_process_port": 70000},
    {"unknown": 1},
])
def test_invalid_distributed_configs_are_rejected(bad):
    with pytest.raises(ValidationError):
        cfg(**bad)


def test_select_gpus():
    assert select_gpus(DistributedConfig(), [0, 1, 2]) == [0, 1, 2]
    assert select_gpus(DistributedConfig(gpus=[2, 1]), [0, 1, 2]) == [2, 1]
    assert select_gpus(DistributedConfig(num_processes=2), [0, 1, 2]) == [0, 1]
    assert select_gpus(DistributedConfig(num_processes=2), []) == []


def test_zero2_deepspeed_json_leaves_trainer_values_auto():
    ds = build_deepspeed_config(DistributedConfig(backend="deepspeed", zero_stage=2))
    assert ds["zero_optimization"]["stage"] == 2
    assert "offload_optimizer" not in ds["zero_optimization"] and "offload_param" not in ds["zero_optimization"]
    for key in ("gradient_accumulation_steps", "gradient_clipping", "train_micro_batch_size_per_gpu", "train_batch_size"):
        assert ds[key] == "auto"
    assert ds["bf16"]["enabled"] == "auto" and ds["fp16"]["enabled"] == "auto"


def test_zero3_offload_deepspeed_json():
    ds = build_deepspeed_config(DistributedConfig(backend="deepspeed", zero_stage=3, offload_params=True,
                                                  offload_optimizer=True))
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert zero["offload_param"]["device"] == "cpu" and zero["offload_optimizer"]["device"] == "cpu"


def test_zero3_files_written_atomically_and_consistent(tmp_path):
    config = cfg(backend="deepspeed", zero_stage=3, offload_params=True)
    files = write_launch_files(tmp_path, config, [0, 1])
    assert set(files) == {"accelerate.yaml", "deepspeed.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accelerate.yaml", "deepspeed.json"]  # no temp files left
    acc = yaml.safe_load(files["accelerate.yaml"].read_text())
    assert acc["distributed_type"] == "DEEPSPEED" and acc["num_processes"] == 2 and acc["gpu_ids"] == "0,1"
    assert acc["deepspeed_config"] == {"deepspeed_config_file": str(tmp_path / "deepspeed.json"), "zero3_init_flag": True}
    assert "mixed_precision" not in acc  # accelerate refuses it beside a deepspeed_config_file
    ds = json.loads(files["deepspeed.json"].read_text())
    assert ds["zero_optimization"]["offload_param"] == {"device": "cpu", "pin_memory": True}


def test_fsdp_accelerate_config():
    acc = build_accelerate_config(cfg(backend="fsdp", offload_params=True), Path("/r"), [0, 1, 2, 3], "bf16")
    assert acc["distributed_type"] == "FSDP" and acc["num_processes"] == 4 and acc["mixed_precision"] == "bf16"
    fsdp = acc["fsdp_config"]
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True
    assert fsdp["fsdp_offload_params"] is True and fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert set(render_launch_files(cfg(backend="fsdp"), Path("/r"), [0, 1])) == {"accelerate.yaml"}


def test_multi_node_accelerate_config_counts_processes_over_all_machines():
    config = cfg(backend="deepspeed", num_machines=2, machine_rank=1, main_process_ip="10.0.0.1",
                 main_process_port=29400)
    acc = build_accelerate_config(config, Path("/r"), [0, 1, 2, 3])
    assert acc["num_processes"] == 8 and acc["num_machines"] == 2 and acc["machine_rank"] == 1
    assert acc["main_process_ip"] == "10.0.0.1" and acc["main_process_port"] == 29400
    assert acc["deepspeed_config"]["deepspeed_multinode_launcher"] == "standard"


CASES = {
    "zero2": ({"backend": "deepspeed", "zero_stage": 2}, [0, 1]),
    "zero3_offload": ({"backend": "deepspeed", "zero_stage": 3, "offload_params": True, "offload_optimizer": True}, [0, 1]),
    "fsdp": ({"backend": "fsdp"}, [0, 1]),
    "fsdp_multinode": ({"backend": "fsdp", "num_machines": 2, "machine_rank": 1, "main_process_ip": "10.0.0.1",
                        "main_process_port": 29400}, [0, 1]),
    "ddp_multinode": ({"num_machines": 2, "main_process_ip": "10.0.0.1"}, [0, 1]),
    "cpu_two_processes": ({"num_processes": 2}, []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_accelerate_reads_our_argv_and_files_as_intended(tmp_path, name):
    """Feed the argv (and the written YAML) to accelerate's own launch parser and validation."""
    pytest.importorskip("accelerate")
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    dist, gpus = CASES[name]
    config = cfg(**dist)
    write_launch_files(tmp_path, config, gpus)
    argv = build_launch_command(config, tmp_path, gpus=gpus, python="/py")
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[3:]))
    machines = dist.get("num_machines", 1)
    assert args.num_processes == max(1, len(gpus) or dist.get("num_processes", 1)) * machines
    assert args.num_machines == machines
    assert args.use_deepspeed == (dist.get("backend") == "deepspeed")
    assert args.use_fsdp == (dist.get("backend") == "fsdp")
    assert args.multi_gpu == (dist.get("backend") is None)  # plain DDP, GPU or CPU: torchrun starts the processes
    assert not args.cpu
    if machines > 1:
        assert int(args.machine_rank) == dist.get("machine_rank", 0) and args.main_process_ip == "10.0.0.1"
    if dist.get("backend") == "deepspeed":
        assert args.deepspeed_config_file == str(tmp_path / "deepspeed.json")
        assert str(args.zero3_init_flag).lower() == str(dist["zero_stage"] == 3).lower()
    if dist.get("backend") == "fsdp":
        assert int(args.fsdp_version) == 2 and args.fsdp_state_dict_type == "FULL_STATE_DICT"
