"""DeepSpeed ZeRO-2/3 (with CPU offload) and FSDP2 train for real on 2 CPU processes, through the API.

Every job below runs the tiny Llama for 4 fp32 steps on 2 processes (gloo). What is asserted:
- ``engine.distributed`` (read by the engine from the live accelerate/DeepSpeed/FSDP objects) says what ran:
  backend, world size, ZeRO stage, offload, and that the parameters really are sharded (FSDP2: DTensors);
- the loss curve matches the same job under plain DDP step by step within ``CURVE_TOLERANCE``: same data order,
  same math, only the sharding differs (fp32: bf16 ZeRO-3 is known to learn less than DDP in the same steps);
- the saved adapter / model is complete (consolidated: every tensor full-size, none empty), loads in plain
  peft / transformers in this process, and differs from the base.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine.cpu_jobs import losses, studio, submit, upload_conversations, wait_done

pytestmark = pytest.mark.slow

CURVE_TOLERANCE = 5e-3  # absolute, per logged step, fp32 (measured here: ZeRO-2/3 equal DDP to 1e-6)
TWO = {"num_processes": 2}
JOBS = {
    "ddp_lora": {"distributed": {"backend": "ddp", **TWO}},
    "ddp_full": {"method": "full", "distributed": {"backend": "ddp", **TWO}},
    "zero2_offload_lora": {"distributed": {"backend": "deepspeed", "zero_stage": 2, "offload_optimizer": True, **TWO}},
    "zero3_lora": {"distributed": {"backend": "deepspeed", "zero_stage": 3, **TWO}},
    "zero3_offload_full": {"method": "full", "distributed": {"backend": "deepspeed", "zero_stage": 3,
                                                             "offload_optimizer": True, "offload_params": True, **TWO}},
    "fsdp_lora": {"distributed": {"backend": "fsdp", **TWO}},
    "fsdp_full": {"method": "full", "distributed": {"backend": "fsdp", **TWO}},
}
REFERENCE = {name: "ddp_full" if JOBS[name].get("method") == "full" else "ddp_lora" for name in JOBS}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, tiny_model_dir):
    """Every job of JOBS, submitted at once (they queue on the one CPU slot), each waited for: name -> job."""
    with studio(tmp_path_factory.mktemp("sharded"), tiny_model_dir) as client:
        dataset = upload_conversations(client)
        ids = {name: submit(client, dataset, compute_type="fp32", name=name, **fields) for name, fields in JOBS.items()}
        done = {name: wait_done(client, job_id) for name, job_id in ids.items()}
        curves = {name: losses(client, job_id) for name, job_id in ids.items()}
        yield {name: {**job, "losses": curves[name]} for name, job in done.items()}


@pytest.mark.parametrize("name, backend, stage, offload", [
    ("ddp_lora", "ddp", None, None),
    ("zero2_offload_lora", "deepspeed", 2, ["optimizer"]),
    ("zero3_lora", "deepspeed", 3, []),
    ("zero3_offload_full", "deepspeed", 3, ["optimizer", "params"]),
    ("fsdp_lora", "fsdp", None, []),
    ("fsdp_full", "fsdp", None, []),
])
def test_engine_reports_the_live_distributed_state(jobs, name, backend, stage, offload):
    live = jobs[name]["engine"]["distributed"]
    assert live["backend"] == backend and live["world_size"] == 2, live
    if stage is not None:
        assert live["zero_stage"] == stage, live
    if offload is not None:
        assert live["offload"] == offload, live
    sharded = backend == "fsdp" or stage == 3
    assert live["sharded_params"] is sharded, live
    if backend == "fsdp":  # FSDP2 forced on CPU: every parameter became a DTensor shard
        assert live["dtensor_params"] == live["params"] > 0 and 0.4 < live["local_share"] < 0.6, live
    if "optimizer" in (offload or []):
        assert jobs[name]["engine"]["optimizer"]["class"].endswith(".DeepSpeedCPUAdam")


@pytest.mark.parametrize("name", [n for n in JOBS if not n.startswith("ddp")])
def test_loss_curve_matches_the_same_job_under_ddp(jobs, name):
    got, want = jobs[name]["losses"], jobs[REFERENCE[name]]["losses"]
    assert len(got) == len(want) == 4, (got, want)
    assert max(abs(a - b) for a, b in zip(got, want)) <= CURVE_TOLERANCE, (got, want)
    assert got[-1] < got[0], got  # and it learned


def _inputs(model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return tokenizer.apply_chat_template([{"role": "user", "content": "What is 3 plus 3?"}],
                                         add_generation_prompt=True, return_tensors="pt", return_dict=True)


@pytest.mark.parametrize("name", ["zero2_offload_lora", "zero3_lora", "fsdp_lora"])
def test_sharded_lora_runs_save_a_complete_adapter_that_loads_in_peft(jobs, name, tiny_model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    adapter_dir = Path(jobs[name]["run_dir"]) / "adapter"
    reference = load_file(Path(jobs["ddp_lora"]["run_dir"]) / "adapter" / "adapter_model.safetensors")
    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    assert tensors.keys() == reference.keys()
    assert all(tensors[k].shape == reference[k].shape and tensors[k].numel() > 0 for k in tensors)
    assert any(torch.count_nonzero(t) for k, t in tensors.items() if "lora_B" in k)  # trained, not the zero init

    inputs = _inputs(tiny_model_dir)
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        base_logits = base(**inputs).logits
        tuned = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
        assert not torch.allclose(tuned(**inputs).logits, base_logits, atol=1e-4)


@pytest.mark.parametrize("name", ["zero3_offload_full", "fsdp_full"])
def test_sharded_full_runs_save_consolidated_weights_that_load_in_transformers(jobs, name, tiny_model_dir):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model_dir = Path(jobs[name]["run_dir"]) / "model"
    base_tensors = load_file(tiny_model_dir / "model.safetensors")
    saved = {}
    for shard in model_dir.glob("*.safetensors"):
        saved.update(load_file(shard))
    assert saved.keys() == base_tensors.keys()  # consolidated: every tensor, full size, no shard left behind
    assert all(saved[k].shape == base_tensors[k].shape for k in saved)
    assert all(torch.isfinite(t).all() for t in saved.values())

    inputs = _inputs(tiny_model_dir)
    with torch.no_grad():
        trained = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        assert not torch.allclose(trained(**inputs).logits, base(**inputs).logits, atol=1e-4)


@pytest.mark.parametrize("name", ["zero3_lora", "fsdp_lora"])
def test_a_sharded_lora_run_merges_into_its_base(jobs, name, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from backend.engine.merge import merge_adapter

    run_dir = Path(jobs[name]["run_dir"])
    merged_dir = merge_adapter(run_dir, out_dir=tmp_path / "merged")
    inputs = _inputs(tiny_model_dir)
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()(**inputs).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        tuned = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()(**inputs).logits
    assert torch.allclose(merged, tuned, atol=1e-4)


def test_a_full_run_is_its_own_merged_model_or_converted_to_the_dtype_asked_for(jobs, tmp_path):
    import json

    from safetensors.torch import load_file

    from backend.engine.merge import merge_adapter

    run_dir = Path(jobs["fsdp_full"]["run_dir"])
    assert merge_adapter(run_dir) == run_dir / "model"  # fp32 as trained: nothing to write
    converted = merge_adapter(run_dir, dtype="bf16", out_dir=tmp_path / "bf16")
    assert json.loads((converted / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(converted / "model.safetensors").values()} == {torch.bfloat16}
    assert (converted / "tokenizer_config.json").is_file()
