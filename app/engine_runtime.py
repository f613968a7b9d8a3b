"""What a run really ran on, in a few words for the Runs card: the distributed backend as the engine read it from
the live state (``engine.distributed``) and the quantized base (``engine.quantization``). Library names (DeepSpeed
ZeRO-3, FSDP2, nf4) stay as they are; the words around them go through the i18n catalogs."""

from __future__ import annotations

from app.i18n import DEFAULT, t

BACKEND_NAMES = {"deepspeed": "DeepSpeed ZeRO-{stage}", "fsdp": "FSDP2", "ddp": "DDP"}


def distributed_words(distributed: dict | None, lang: str = DEFAULT) -> str:
    """e.g. 'DeepSpeed ZeRO-3 × 2 processes, offload optimizer+params, sharded'; '' for a single process."""
    if not distributed or distributed.get("backend") in (None, "none"):
        return ""
    backend = distributed["backend"]
    name = BACKEND_NAMES.get(backend, str(backend)).format(stage=distributed.get("zero_stage"))
    words = [t("runs.processes", lang, backend=name, count=distributed.get("world_size"))]
    if distributed.get("offload"):
        words.append(t("runs.offload", lang, parts="+".join(distributed["offload"])))
    if distributed.get("sharded_params"):
        words.append(t("runs.sharded", lang))
    return ", ".join(words)


def quantization_words(quantization: dict | None, lang: str = DEFAULT) -> str:
    """e.g. '4-bit base (nf4)'; '' when the base is not quantized."""
    if not quantization:
        return ""
    return t("runs.quantized_base", lang, bits=quantization.get("bits"), quant_type=quantization.get("quant_type"))


def runtime_parts(engine: dict | None, lang: str = DEFAULT) -> list[str]:
    """The non-empty phrases above, for the Runs card's engine line to append."""
    engine = engine or {}
    words = (quantization_words(engine.get("quantization"), lang),
             distributed_words(engine.get("distributed"), lang))
    return [w for w in words if w]
