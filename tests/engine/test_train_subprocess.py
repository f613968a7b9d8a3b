"""Real `python -m backend.engine train|merge` subprocesses on a tiny random-init Llama (CPU).

One LoRA run is trained once for the module; every test reads what it left in its run dir.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

from tests.engine.tiny_runs import make_run_dir, read_result, run_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir):
    run_dir = make_run_dir(tmp_path_factory.mktemp("lora"), tiny_model_dir, method="lora", lora_rank=4)
    done = run_engine("train", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir / "engine-stdout.txt").write_text(done.stdout, encoding="utf-8")
    return run_dir


@pytest.fixture(scope="module")
def merged_dir(lora_run):
    done = run_engine("merge", "--run-dir", str(lora_run))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return lora_run / "merged"


def test_train_writes_succeeded_result(lora_run):
    result = read_result(lora_run)
    assert result["status"] == "succeeded"
    assert result["output"] == "adapter"
    assert math.isfinite(result["train_loss"]) and result["runtime_s"] > 0


def test_events_have_one_row_per_step_with_finite_loss(lora_run):
    rows = [json.loads(line) for line in (lora_run / "events.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if "loss" in row]
    assert [row["step"] for row in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        assert {"step", "total_steps", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "eta_s", "time"} <= set(row)
        assert math.isfinite(row["loss"]) and row["total_steps"] == 4 and row["tokens_per_s"] > 0


def test_the_log_shows_rounded_numbers_and_ends_with_key_value_text(lora_run):
    lines = (lora_run / "engine-stdout.txt").read_text(encoding="utf-8").splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 4 and all(" loss " in line and " grad_norm " in line for line in progress)
    assert not any(re.search(r"\d\.\d{6,}", line) for line in progress), progress  # no 16-digit floats
    last = lines[-1]
    assert last.startswith("succeeded: ") and "output=adapter" in last and "train_loss=" in last, last
    assert "{" not in last and not re.search(r"\d\.\d{6,}", last), last  # no raw Python dict
    assert "distributed: backend=none world_size=1" in lines, [line for line in lines if "distributed" in line]


def test_adapter_holds_only_trained_lora_weights(lora_run, tiny_model_dir):
    adapter = lora_run / "adapter"
    names = {path.name for path in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not names & {"training_args.bin", "model.safetensors"}
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["peft_type"] == "LORA"

    tensors = load_file(adapter / "adapter_model.safetensors")
    assert tensors and all("lora_A" in name or "lora_B" in name for name in tensors)  # no base weight saved
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    assert all(torch.count_nonzero(t) > 0 for t in lora_b), "lora_B starts at zero; training must move it"


def test_adapter_loads_on_base_and_leaves_base_weights_alone(lora_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    wrapped = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_run / "adapter")
    base_weights = {
        name.removeprefix("base_model.model.").replace(".base_layer", ""): tensor
        for name, tensor in wrapped.state_dict().items()
        if "lora_" not in name
    }
    assert base_weights.keys() == original.keys()
    for name, tensor in original.items():
        assert torch.equal(base_weights[name], tensor), name


def test_merge_writes_safetensors_config_and_tokenizer(merged_dir):
    names = {path.name for path in merged_dir.iterdir()}
    assert any(name.endswith(".safetensors") for name in names)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not list(merged_dir.parent.glob(".merged*")), "temp dir must be renamed into place"


def test_merged_logits_equal_base_plus_adapter(merged_dir, lora_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3 plus 3?"}], add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, lora_run / "adapter").eval()
        expected = adapted(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
        actual = merged(ids).logits
    assert torch.allclose(actual, expected, atol=1e-4)
    assert not torch.allclose(actual, base_logits, atol=1e-4), "the merged model must differ from the base"
