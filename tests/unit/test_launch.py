from pathlib import Path

from backend.config.schema import RunConfig
from backend.engine.launch import build_engine_command, build_launch_command

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
    assert build_engine_command("merge", Path("/r"), python="/py") == ["/py", "-m", "backend.engine", "merge", "--run-dir", "/r"]
