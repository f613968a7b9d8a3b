"""``tunesmith train FILE`` with a LLaMA-Factory training YAML: mapped, resolved against the studio, trained."""

from pathlib import Path

import pytest

from backend.cli import main

LF_YAML = """\
### model
model_name_or_path: {model}
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
lora_target: all
### dataset
dataset: {dataset}
template: chatml
cutoff_len: 64
max_samples: 8
### output
output_dir: saves/tiny/lora/sft
logging_steps: 1
### train
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
learning_rate: 5.0e-3
max_steps: 2
lr_scheduler_type: cosine
"""


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_model_dir) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    (models / "test-org--tiny-llama").symlink_to(tiny_model_dir)
    monkeypatch.setenv("TUNESMITH_MODELS_DIR", str(models))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    return tmp_path / "home"


def test_a_llamafactory_yaml_trains_from_the_command_line(home, tmp_path, capsys):
    path = tmp_path / "lf_sft.yaml"
    path.write_text(LF_YAML.format(model="test-org/tiny-llama", dataset="identity"))
    assert main(["--home", str(home), "train", str(path)]) == 0
    out = capsys.readouterr().out
    assert "LLaMA-Factory YAML: output_dir: output_dir is not used" in out
    run_dir = Path(out.split(" -> ")[1].split()[0])
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    run = (run_dir / "run.yaml").read_text()
    assert "rank: 4" in run and "chat_template: chatml" in run and "max_steps: 2" in run


def test_a_model_or_dataset_the_studio_lacks_is_an_error_not_a_default(home, tmp_path, capsys):
    path = tmp_path / "lf_sft.yaml"
    path.write_text(LF_YAML.format(model="meta-llama/Meta-Llama-3-8B-Instruct", dataset="identity,nope"))
    assert main(["--home", str(home), "train", str(path)]) == 1
    err = capsys.readouterr().err
    assert "does not have the base model meta-llama/Meta-Llama-3-8B-Instruct" in err and "hint:" in err
