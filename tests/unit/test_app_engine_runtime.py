"""The Runs card's words for what a run really ran on (engine.distributed / engine.quantization)."""

from app.engine_runtime import runtime_parts


def test_distributed_and_quantized_runs_are_named_by_what_ran():
    zero3 = {"backend": "deepspeed", "world_size": 2, "zero_stage": 3, "offload": ["optimizer", "params"],
             "sharded_params": True}
    assert runtime_parts({"distributed": zero3}) == [
        "DeepSpeed ZeRO-3 × 2 processes, offload optimizer+params, sharded"]
    fsdp = {"backend": "fsdp", "world_size": 2, "offload": [], "sharded_params": True}
    assert runtime_parts({"distributed": fsdp}) == ["FSDP2 × 2 processes, sharded"]
    qlora = {"quantization": {"bits": 4, "quant_type": "nf4"}, "distributed": {"backend": "none", "world_size": 1}}
    assert runtime_parts(qlora) == ["4-bit base (nf4)"]
    assert runtime_parts(None) == [] and runtime_parts({"precision": "bf16"}) == []
