"""The Runs card's words for what a run really ran on (engine.distributed / engine.quantization)."""

from app.engine_runtime import runtime_parts


def test_distributed_and_quantized_runs_are_named_by_what_ran():
    zero3 = {
        "backend": "deepspeed",
        "world_size": 2,
        "zero_stage": 3,
        "offload": ["optimizer", "params"],
        "sharded_params": True,
    }
    assert runtime_parts({"distributed": zero3}) == [
        "DeepSpeed ZeRO-3 × 2 processes, offload optimizer+params, sharded"
    ]
    fsdp = {"backend": "fsdp", "world_size": 2, "offload": [], "sharded_params": True}
    assert runtime_parts({"distributed": fsdp}) == ["FSDP2 × 2 processes, sharded"]
    qlora = {"quantization": {"bits": 4, "quant_type": "nf4"}, "distributed": {"backend": "none", "world_size": 1}}
    assert runtime_parts(qlora) == ["4-bit base (nf4)"]
    assert runtime_parts(None) == [] and runtime_parts({"precision": "bf16"}) == []


def test_the_runs_card_engine_line_says_it_in_either_language():
    from app.pages.runs_card import engine_summary

    engine = {
        "precision": "bf16",
        "quantization": {"bits": 8, "quant_type": "llm_int8"},
        "distributed": {"backend": "fsdp", "world_size": 2, "sharded_params": True},
    }
    assert engine_summary(engine).endswith("8-bit base (llm_int8) · FSDP2 × 2 processes, sharded")
    assert "FSDP2 × 2 个进程" in engine_summary(engine, "zh")
