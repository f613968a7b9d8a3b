from pathlib import Path

from backend.config.schema import RunConfig
from backend.engine_process import build_engine_command
from backend.jobs.launch import build_launch_command

CFG = RunConfig(base_model="m", datasets=["d"])


def test_cpu_launch_is_single_cpu_process():
    argv = build_launch_command(CFG, Path("/runs/job_1"), gpus=[], python="/py")
    assert argv[:3] == ["/py", "-m", "accelerate.commands.launch"]
    assert "--cpu" in argv and argv[argv.index("--num_processes") + 1] == "1"
    assert argv[argv.index("--mixed_precision") + 1] == "no"
    assert argv[-5:] == ["-m", "backend.engine", "train", "--run-dir", "/runs/job_1"]


def test_multi_gpu_launch_uses_one_process_per_gpu():
    cfg = CFG.model_copy(update={"compute_type": "fp16"})
    argv = build_launch_command(cfg, Path("/r"), gpus=[2, 3], python="/py", main_process_port=29555)
    assert argv[argv.index("--num_processes") + 1] == "2"
    assert argv[argv.index("--gpu_ids") + 1] == "2,3"
    assert "--multi_gpu" in argv and "--cpu" not in argv
    assert argv[argv.index("--mixed_precision") + 1] == "fp16"
    assert argv[argv.index("--main_process_port") + 1] == "29555"


def test_single_gpu_auto_leaves_precision_to_the_engine_and_argv_has_no_shell():
    argv = build_launch_command(CFG, Path("/r"), gpus=[0], python="/py")
    assert argv[argv.index("--mixed_precision") + 1] == "no"
    assert "--multi_gpu" not in argv
    assert all(isinstance(a, str) and ";" not in a for a in argv)


def test_engine_command():
    assert build_engine_command("merge", "--run-dir", Path("/r"), python="/py") == ["/py", "-m", "backend.engine", "merge", "--run-dir", "/r"]


def dist_cfg(**dist) -> RunConfig:
    return RunConfig(base_model="m", datasets=["d"], distributed=dist)


def test_zero2_launch_reads_the_run_dirs_accelerate_yaml():
    argv = build_launch_command(dist_cfg(backend="deepspeed", zero_stage=2), Path("/r"), gpus=[0, 1], python="/py")
    assert argv[3:5] == ["--config_file", "/r/accelerate.yaml"]
    assert argv[argv.index("--num_processes") + 1] == "2" and argv[argv.index("--gpu_ids") + 1] == "0,1"
    assert "--multi_gpu" not in argv and "--cpu" not in argv  # either flag would override the YAML's DEEPSPEED
    assert argv[-5:] == ["-m", "backend.engine", "train", "--run-dir", "/r"]


def test_zero3_offload_single_gpu_still_uses_the_config_file():
    cfg = dist_cfg(backend="deepspeed", zero_stage=3, offload_params=True, offload_optimizer=True)
    argv = build_launch_command(cfg, Path("/r"), gpus=[3], python="/py")
    assert argv[3:5] == ["--config_file", "/r/accelerate.yaml"]
    assert argv[argv.index("--num_processes") + 1] == "1" and argv[argv.index("--gpu_ids") + 1] == "3"


def test_fsdp_launch():
    argv = build_launch_command(dist_cfg(backend="fsdp"), Path("/r"), gpus=[0, 1, 2, 3], python="/py",
                                main_process_port=29601)
    assert "--config_file" in argv and "--multi_gpu" not in argv
    assert argv[argv.index("--num_processes") + 1] == "4"
    assert argv[argv.index("--main_process_port") + 1] == "29601"


def test_multi_node_launch_passes_rank_address_and_total_processes():
    cfg = dist_cfg(num_machines=2, machine_rank=1, main_process_ip="10.0.0.1", main_process_port=29400)
    argv = build_launch_command(cfg, Path("/r"), gpus=[0, 1], python="/py")
    assert argv[argv.index("--num_processes") + 1] == "4"  # accelerate counts processes over all machines
    assert argv[argv.index("--num_machines") + 1] == "2" and argv[argv.index("--machine_rank") + 1] == "1"
    assert argv[argv.index("--main_process_ip") + 1] == "10.0.0.1"
    assert argv[argv.index("--main_process_port") + 1] == "29400"
    assert "--multi_gpu" in argv and "--config_file" not in argv


def test_cpu_multi_process_launch_is_torchrun_style_not_cpu_flag():
    """accelerate's --cpu starts ONE process whatever --num_processes says; --multi_gpu makes torchrun start N,
    and the engine (no CUDA) joins them over gloo."""
    argv = build_launch_command(dist_cfg(num_processes=2), Path("/r"), gpus=[], python="/py", main_process_port=29777)
    assert argv[argv.index("--num_processes") + 1] == "2" and "--multi_gpu" in argv
    assert "--cpu" not in argv and "--gpu_ids" not in argv
    assert argv[argv.index("--main_process_port") + 1] == "29777"
    assert argv[argv.index("--mixed_precision") + 1] == "no"
