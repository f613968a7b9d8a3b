"""QLoRA (4-bit nf4 and 8-bit bases) and bitsandbytes' 8-bit optimizers train for real on the CPU, through the
API, and the merge keeps what the adapter learned.

Two jobs on the tiny Llama: QLoRA 4-bit with ``paged_adamw_8bit`` and QLoRA 8-bit with ``adamw_8bit``. Asserted:
``engine.quantization`` (read from the loaded layers) and ``engine.optimizer`` say what ran; the base stays
quantized when the adapter is loaded back on it; the merged model (QLoRA: into the *dequantized* base) gives the
same logits as quantized base + adapter, has no quantization left and the base's dtype, and scores a clearly
lower loss than the base on the training replies (measured: 5.88 vs 6.26; a merge into the 4-bit layers can
silently drop the adapter, as seen on SmolLM2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine.cpu_jobs import losses, studio, submit, upload_conversations, wait_done
from tests.engine.tiny_runs import conversations

pytestmark = pytest.mark.slow

# rank 32: the MLP's LoRA matrices (32 x 128) reach bitsandbytes' min_8bit_size (4096 elements); smaller tensors
# keep 32-bit optimizer state by design
JOBS = {
    "qlora4": {"method": {"name": "qlora", "bits": 4, "rank": 32, "alpha": 64}, "optimizer": "paged_adamw_8bit"},
    "qlora8": {"method": {"name": "qlora", "bits": 8, "rank": 32, "alpha": 64}, "optimizer": "adamw_8bit"},
}
# a learning rate the tiny random model notices in 8 steps
TRAINING = {"max_steps": 8, "learning_rate": 2e-2}
LOSS_MARGIN = 0.2  # the merged model's reply loss must be at least this much below the base's (measured: 0.38)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir):
    """name -> the finished job (+ its losses), and the QLoRA 4-bit run merged through POST /jobs/{id}/merge."""
    with studio(tmp_path_factory.mktemp("quantized"), tiny_model_dir) as client:
        dataset = upload_conversations(client)
        ids = {name: submit(client, dataset, name=name, **TRAINING, **fields) for name, fields in JOBS.items()}
        jobs = {name: {**wait_done(client, job_id), "losses": losses(client, job_id)} for name, job_id in ids.items()}
        merge = client.post(f"/api/v1/jobs/{ids['qlora4']}/merge")
        assert merge.status_code == 200, merge.text
        yield jobs


def reply_loss(model, tokenizer) -> float:
    """Mean token loss of the assistant replies of the training conversations (first exchange of each)."""
    total, count = 0.0, 0
    for row in conversations():
        messages = [m for m in row["messages"] if m["role"] != "system"][:2]
        prompt = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(messages[1]["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + reply_ids])
        labels = torch.tensor([[-100] * len(prompt_ids) + reply_ids])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss
        total, count = total + loss.item() * len(reply_ids), count + len(reply_ids)
    return total / count


def quantized_base(tiny_model_dir: Path, job: dict):
    """The base loaded quantized exactly as the run did (its method and resolved precision)."""
    from backend.config.schema import RunConfig
    from backend.engine.model import load_model
    from backend.engine.quantization import build_quantization_config

    method = RunConfig.model_validate(job["config"]).method
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[job["engine"]["precision"]]
    return load_model(tiny_model_dir, dtype, quantization_config=build_quantization_config(method, dtype),
                      device_map={"": "cpu"}).eval()


@pytest.mark.parametrize("name, bits, quant_type, paged", [("qlora4", 4, "nf4", True), ("qlora8", 8, "llm_int8", False)])
def test_qlora_trains_on_cpu_with_an_8bit_optimizer_and_says_so(finished, name, bits, quant_type, paged):
    job = finished[name]
    assert job["output"] == "adapter" and job["step"] == 8
    quantization = job["engine"]["quantization"]
    assert quantization["bits"] == bits and quantization["quant_type"] == quant_type, quantization
    assert quantization["quantized_layers"] == 14  # 2 decoder layers x 7 projections; lm_head stays full precision
    optimizer = job["engine"]["optimizer"]  # bitsandbytes' optimizer with 8-bit state (uint8 moments) stepped
    assert optimizer["class"].startswith("bitsandbytes.optim.") and optimizer["bits"] == 8, optimizer
    assert optimizer["paged"] is paged and "uint8" in optimizer["state_dtypes"], optimizer
    assert job["engine"]["distributed"]["backend"] == "none"
    curve = job["losses"]
    assert len(curve) == 8 and curve[-1] < curve[0] - 0.1, curve


@pytest.mark.parametrize("name", ["qlora4", "qlora8"])
def test_adapter_reloads_on_the_still_quantized_base(finished, name, tiny_model_dir):
    import bitsandbytes as bnb
    from peft import PeftModel

    job = finished[name]
    base = quantized_base(tiny_model_dir, job)
    layer = bnb.nn.Linear4bit if name == "qlora4" else bnb.nn.Linear8bitLt
    tuned = PeftModel.from_pretrained(base, str(Path(job["run_dir"]) / "adapter")).eval()
    assert sum(isinstance(m, layer) for m in tuned.modules()) == 14  # the base stays quantized under LoRA
    assert any("lora_B" in n and torch.count_nonzero(p) for n, p in tuned.named_parameters())
    ids = torch.tensor([[5, 17, 33, 2, 41, 7]])
    with torch.no_grad(), tuned.disable_adapter():
        base_logits = tuned(input_ids=ids).logits
    with torch.no_grad():
        first, again = tuned(input_ids=ids).logits, tuned(input_ids=ids).logits
    assert torch.equal(first, again) and not torch.allclose(first, base_logits, atol=1e-3)


def test_merged_qlora_keeps_the_adapter_and_the_base_dtype(finished, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job = finished["qlora4"]
    merged_dir = Path(job["run_dir"]) / "merged"
    config = json.loads((merged_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"  # the tiny base is fp32
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    base_loss, merged_loss = reply_loss(base, tokenizer), reply_loss(merged, tokenizer)
    assert merged_loss < base_loss - LOSS_MARGIN, (base_loss, merged_loss)

    # the merge equals what the run trained: the quantized base + the adapter, up to bf16 compute rounding
    tuned = PeftModel.from_pretrained(quantized_base(tiny_model_dir, job), str(Path(job["run_dir"]) / "adapter"))
    assert abs(reply_loss(tuned.eval(), tokenizer) - merged_loss) < 0.05


def test_merge_writes_the_dtype_and_shard_size_asked_for(finished, tmp_path):
    from safetensors import safe_open

    from backend.engine.merge import merge_adapter

    out = merge_adapter(finished["qlora4"]["run_dir"], dtype="bf16", max_shard_size="200KB", out_dir=tmp_path / "m")
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(shards[0]), "pt") as fh:
        assert all(fh.get_tensor(key).dtype == torch.bfloat16 for key in fh.keys())  # noqa: SIM118 - not a dict
