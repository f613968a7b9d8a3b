"""What a run really ran on, in a few words for the Runs card: the distributed backend as the engine read it from
the live state (``engine.distributed``) and the quantized base (``engine.quantization``). The words are the
libraries' own names (DeepSpeed ZeRO-3, FSDP2, nf4), so they need no translation."""

from __future__ import annotations


def distributed_words(distributed: dict | None) -> str:
    """e.g. 'DeepSpeed ZeRO-3 × 2 processes, offload optimizer+params, sharded'; '' for a single process."""
    if not distributed or distributed.get("backend") in (None, "none"):
        return ""
    backend = distributed["backend"]
    name = {"deepspeed": f"DeepSpeed ZeRO-{distributed.get('zero_stage')}", "fsdp": "FSDP2", "ddp": "DDP"}.get(
        backend, str(backend))
    words = [f"{name} × {distributed.get('world_size')} processes"]
    if distributed.get("offload"):
        words.append("offload " + "+".join(distributed["offload"]))
    if distributed.get("sharded_params"):
        words.append("sharded")
    return ", ".join(words)


def quantization_words(quantization: dict | None) -> str:
    """e.g. '4-bit base (nf4)'; '' when the base is not quantized."""
    if not quantization:
        return ""
    return f"{quantization.get('bits')}-bit base ({quantization.get('quant_type')})"


def runtime_parts(engine: dict | None) -> list[str]:
    """The non-empty phrases above, for engine_summary to append."""
    engine = engine or {}
    return [w for w in (quantization_words(engine.get("quantization")), distributed_words(engine.get("distributed")))
            if w]
