"""Full and freeze fine-tuning, trained in-process with the same entry point the CLI uses.

After training, trainable weights changed and frozen ones did not; the output is a loadable model dir.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.engine.recipe import train
from tests.engine.tiny_runs import make_run_dir, read_result


def _weights(model_dir) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


@pytest.fixture(scope="module")
def original(tiny_model_dir):
    return _weights(tiny_model_dir)


def test_full_finetuning_changes_every_weight(tmp_path, tiny_model_dir, original):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, method="full", learning_rate=1e-3)
    assert train(run_dir) == 0, (run_dir / "result.json").read_text()
    assert read_result(run_dir)["output"] == "model"
    assert not (run_dir / "adapter").exists()
    trained = _weights(run_dir / "model")
    for name, tensor in original.items():
        assert not torch.equal(trained[name], tensor), f"{name} did not change"


def test_freeze_trains_only_the_last_layers(tmp_path, tiny_model_dir, original):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, method="freeze", freeze_trainable_layers=1, learning_rate=1e-3)
    assert train(run_dir) == 0, (run_dir / "result.json").read_text()
    trained = _weights(run_dir / "model")
    changed = {name for name, tensor in original.items() if not torch.equal(trained[name], tensor)}
    last_layer = {name for name in original if name.startswith("model.layers.1.")}
    assert changed == last_layer


def test_auto_precision_uses_bf16_only_where_the_cpu_has_it():
    from backend.engine.model import cpu_has_native_bf16

    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags\t\t: fpu sse2 avx2 avx512f\n")
