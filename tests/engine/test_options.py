"""Training options beyond the basic methods: LoRA variants (rsLoRA, DoRA, PiSSA, LoRA+, modules_to_save),
freeze by module, the warmup-stable-decay schedule, NEFTune, continued pretraining and the attention report.

Tiny in-process runs (2-6 steps) through the same ``train(run_dir)`` the CLI uses.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from backend.config.rundir import read_resolved_run
from backend.config.schema import LoraMethod, RunConfig
from backend.engine.data import DataStats
from backend.engine.methods import build_lora_config
from backend.engine.model import load_tokenizer, resolve_gradient_checkpointing
from backend.engine.recipe import train
from backend.engine.stages import build_examples
from tests.engine.tiny_runs import make_run_dir, read_result


def _trained(run_dir) -> dict:
    assert train(run_dir) == 0, (run_dir / "result.json").read_text()
    return read_result(run_dir)


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _weights(model_dir) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


def test_rslora_scales_by_alpha_over_sqrt_rank(tiny_model_dir):
    from peft import get_peft_model

    scalings = {}
    for rslora in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        config = build_lora_config(LoraMethod(rank=4, alpha=16, use_rslora=rslora, targets=["q_proj"]))
        peft_model = get_peft_model(model, config)
        layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
        scalings[rslora] = layer.scaling["default"]
    assert scalings[False] == pytest.approx(16 / 4)
    assert scalings[True] == pytest.approx(16 / math.sqrt(4))


def test_dora_adds_trained_magnitude_vectors_and_reports_attention(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, lora_use_dora=True, lora_dropout=0.0, max_steps=2)
    result = _trained(run_dir)
    assert result["attn_implementation"] == "sdpa" and result["precision"] in ("fp32", "bf16")
    tensors = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    magnitudes = {k: v for k, v in tensors.items() if "lora_magnitude_vector" in k}
    assert magnitudes, sorted(tensors)
    # DoRA initialises the magnitude to the column norms of the base weight; training moved them
    base = _weights(tiny_model_dir)
    key = next(k for k in magnitudes if "q_proj" in k and "layers.0." in k)
    norm = base["model.layers.0.self_attn.q_proj.weight"].norm(dim=1)
    assert not torch.allclose(magnitudes[key].float(), norm, atol=1e-6)


def test_loraplus_gives_b_matrices_ratio_times_the_learning_rate(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, lora_loraplus_lr_ratio=16.0, max_steps=2, save_steps=2,
                           learning_rate=1e-3)
    _trained(run_dir)
    optimizer = torch.load(run_dir / "checkpoints" / "checkpoint-2" / "optimizer.pt", weights_only=True)
    lrs = sorted({round(group["lr"], 8) for group in optimizer["param_groups"] if group["params"]})
    assert lrs == [1e-3, 16e-3]
    assert _events(run_dir)[-1]["lr"] == pytest.approx(1e-3)  # the logged lr is the base one


def test_extra_trainable_modules_train_the_embeddings(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, lora_extra_trainable_modules=["embed_tokens"], max_steps=2)
    _trained(run_dir)
    tensors = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    embed = [k for k in tensors if "embed_tokens" in k]
    assert embed, sorted(tensors)
    original = _weights(tiny_model_dir)["model.embed_tokens.weight"]
    assert not torch.equal(tensors[embed[0]].float(), original)
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["embed_tokens"]


def test_pissa_adapter_is_saved_as_plain_lora_on_the_original_base(tmp_path, tiny_model_dir):
    from peft import PeftModel

    run_dir = make_run_dir(tmp_path, tiny_model_dir, lora_init="pissa", lora_rank=4, lora_targets=["q_proj", "v_proj"],
                           lora_dropout=0.0, max_steps=2)
    _trained(run_dir)
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["init_lora_weights"] is True  # rank 2r, no PiSSA init needed to load
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, run_dir / "adapter")(ids).logits
    assert not torch.allclose(before, after)  # the converted adapter carries the training on the original base


def test_freeze_trainable_modules_and_extra_modules(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, method="freeze", freeze_trainable_layers=1,
                           freeze_trainable_modules=["mlp"], freeze_extra_modules=["embed_tokens"],
                           learning_rate=1e-3, max_steps=2)
    _trained(run_dir)
    original = _weights(tiny_model_dir)
    trained = _weights(run_dir / "model")
    changed = {name for name, tensor in original.items() if not torch.equal(trained[name], tensor)}
    expected = {n for n in original if n.startswith("model.layers.1.mlp.")} | {"model.embed_tokens.weight"}
    assert changed == expected


def test_warmup_stable_decay_holds_then_decays(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, lr_scheduler="warmup_stable_decay", max_steps=6,
                           learning_rate=1e-3, neftune_noise_alpha=5.0, optimizer="adafactor")
    _trained(run_dir)
    lrs = [row["lr"] for row in _events(run_dir) if "loss" in row]
    assert len(lrs) == 6
    assert lrs[:5] == pytest.approx([1e-3] * 5)  # stable
    assert lrs[5] == pytest.approx(0.5e-3)  # cosine decay over the last 10% of the steps (at least 2)


def test_pretraining_stage_labels_every_token(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, stage="pt", cutoff_len=32, max_steps=2)
    run = read_resolved_run(run_dir)
    tokenizer = load_tokenizer(tiny_model_dir)
    examples = build_examples(run, tokenizer, DataStats())[0]
    assert all(ex["labels"] == ex["input_ids"] for ex in examples)
    assert all(len(ex["input_ids"]) <= 32 for ex in examples) and len(examples[0]["input_ids"]) == 32
    stream = [t for ex in examples for t in ex["input_ids"]]
    assert stream.count(tokenizer.eos_token_id) == 16  # one EOS after each of the 16 documents
    text = tokenizer.decode(stream[: stream.index(tokenizer.eos_token_id)])
    assert text == "Answer briefly.\n\nWhat is 0 plus 0?\n\n0 plus 0 is 0." and "<|im_start|>" not in text
    assert _trained(run_dir)["status"] == "succeeded"


def test_gradient_checkpointing_auto_and_old_boolean_configs():
    assert resolve_gradient_checkpointing("auto", 135_000_000, 1024)[0] is False
    assert resolve_gradient_checkpointing("auto", 1_200_000_000, 1024)[0] is True
    assert resolve_gradient_checkpointing("auto", 135_000_000, 4096)[0] is True
    assert resolve_gradient_checkpointing("off", 8_000_000_000, 8192)[0] is False
    base = {"base_model": "m", "datasets": ["d"]}
    assert RunConfig.model_validate({**base, "gradient_checkpointing": True}).gradient_checkpointing == "on"
    assert RunConfig.model_validate({**base, "gradient_checkpointing": False}).gradient_checkpointing == "off"
    assert RunConfig.model_validate(base).gradient_checkpointing == "auto"


def test_flash_attention_requested_without_flash_attn_fails_with_a_hint(tmp_path, tiny_model_dir):
    run_dir = make_run_dir(tmp_path, tiny_model_dir, attn_implementation="flash_attention_2")
    assert train(run_dir) == 1
    result = read_result(run_dir)
    assert "flash_attention_2" in result["error"] and "sdpa" in result["hint"]
