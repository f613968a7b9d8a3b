"""Automatic memory plan for a CUDA run: gradient checkpointing on/off, the micro-batch token budget and whether
to recommend offloading, from the model's shape (config.json), the method and the free GPU memory.

Pure arithmetic, no torch: the job service can call it at submit time, the engine calls it before loading the
model. The byte counts per token are calibrated on the H100 reference runs of the Speed issue (plain HF Trainer +
PEFT, bf16, SDPA, Llama-3.2-1B / Llama-3.1-8B shapes; tests/engine/test_memory_plan.py checks them):

- a decoder layer keeps about 2*(10*H + 2*kv + 4*I) bytes per token for the backward pass in bf16 (q/k/v/o and
  MLP inputs and outputs; flash/varlen attention keeps no T x T scores) plus 8*H for the fp32 RMSNorm inputs;
- with activation checkpointing only each layer's input (2*H bytes per token) stays, plus one layer recomputed;
- materialized logits cost about 12 bytes per vocabulary entry per token (bf16 logits, fp32 upcast, softmax,
  gradient); trl's fused LM head (our GPU path) scores tokens in tiles and keeps only a few floats per token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.config.schema import RunConfig

GIB = 2**30
HEADROOM = 0.92           # share of the free memory the plan spends (allocator fragmentation, cuBLAS workspaces)
RESERVE_BYTES = 1 * GIB   # CUDA/NCCL buffers, the optimizer's temporaries
LOGIT_BYTES = 12          # per vocabulary entry per token when the logits are materialized
FUSED_HEAD_BYTES = 64     # per token with trl's fused LM head (log-probs, entropy, masks)
FUSED_HEAD_FIXED = 0.5 * GIB  # its projection tiles
SATURATING_TOKENS = 4096  # a micro-batch this big keeps an H100 busy; below it checkpointing beats shrinking it

ATTENTION_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LINEARS = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that decide its training memory."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied_embeddings: bool = False

    @classmethod
    def from_config(cls, config: dict) -> ModelShape:
        """From a config.json dict (Llama/Qwen/Mistral/Gemma-style keys; a nested text_config is followed)."""
        config = config.get("text_config") or config
        hidden = int(config["hidden_size"])
        heads = int(config.get("num_attention_heads") or max(1, hidden // 128))
        return cls(
            hidden_size=hidden,
            num_layers=int(config["num_hidden_layers"]),
            intermediate_size=int(config.get("intermediate_size") or 4 * hidden),
            vocab_size=int(config["vocab_size"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        )

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> ModelShape:
        return cls.from_config(json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8")))

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one decoder layer."""
        h, i, q = self.hidden_size, self.intermediate_size, self.num_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def layer_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values()) + 2 * self.hidden_size

    @property
    def embedding_params(self) -> int:
        """Input embeddings plus the LM head (once when they are tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)

    @property
    def num_params(self) -> int:
        return self.num_layers * self.layer_params + self.embedding_params + self.hidden_size

    def layer_activation_bytes(self, lora_dropout: bool = False) -> int:
        """Bytes one decoder layer keeps per token for the backward pass (bf16, no checkpointing)."""
        h, i = self.hidden_size, self.intermediate_size
        kept = 2 * (10 * h + 2 * self.kv_dim + 4 * i) + 8 * h
        if lora_dropout:  # each adapted linear keeps its dropped-out input (bf16) and the mask (1 byte)
            kept += 3 * (6 * h + i)
        return kept


@dataclass(frozen=True)
class TrainSetup:
    """What is trained and how, as far as memory is concerned."""

    method: str = "lora"            # full | freeze | lora | qlora
    weights: str = "mixed"          # mixed (fp32 master + bf16/fp16 autocast) | half (bf16/fp16 base) | pure_bf16 | fp32
    optimizer: str = "adamw_torch"
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = ("all-linear",)
    lora_dropout: bool = False
    qlora_bits: int = 4
    freeze_layers: int = 2
    fused_lm_head: bool = True      # trl's tiled LM head (GPU path); False = the logits are materialized
    shards: int = 1                 # ZeRO-3 / FSDP: weights, gradients and optimizer state split over this many GPUs

    @property
    def optimizer_bytes(self) -> float:
        """Optimizer state bytes per trainable parameter (AdamW: two moments in the parameter's dtype)."""
        if self.optimizer.endswith("_8bit"):
            return 2.0
        if self.optimizer == "adafactor":
            return 0.1
        return 4.0 if self.weights == "pure_bf16" else 8.0


@dataclass(frozen=True)
class MemoryPlan:
    gradient_checkpointing: bool
    batch_tokens: int           # tokens per micro-batch the plan budgets for
    fits: bool                  # False: even checkpointing cannot fit one cutoff_len example
    offload: bool               # recommend CPU offload (ZeRO-3) or QLoRA
    free_gib: float
    fixed_gib: float            # weights, gradients, optimizer state
    token_kib: float            # activation memory per token under the chosen checkpointing
    peak_gib: float             # estimated peak for batch_tokens
    reason: str = ""
    advice: str = field(default="")

    def describe(self) -> str:
        head = (f"memory plan: gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}, "
                f"{self.batch_tokens} tokens per micro-batch, est. peak {self.peak_gib:.1f} of {self.free_gib:.1f} GiB "
                f"free (fixed {self.fixed_gib:.1f} GiB + {self.token_kib:.0f} KiB/token); {self.reason}")
        return head + (f"; {self.advice}" if self.advice else "")

    def as_dict(self) -> dict:
        return asdict(self)


def lora_params(shape: ModelShape, setup: TrainSetup) -> int:
    targets = set(shape.linear_shapes()) if "all-linear" in setup.lora_targets else set(setup.lora_targets)
    per_layer = sum(setup.lora_rank * (a + b) for name, (a, b) in shape.linear_shapes().items() if name in targets)
    return per_layer * shape.num_layers


def fixed_bytes(shape: ModelShape, setup: TrainSetup) -> float:
    """Weights, gradients and optimizer state on one GPU: what does not grow with the batch."""
    return _whole_fixed_bytes(shape, setup) / max(1, setup.shards)


def _whole_fixed_bytes(shape: ModelShape, setup: TrainSetup) -> float:
    n = shape.num_params
    if setup.method in ("lora", "qlora"):
        if setup.method == "qlora":
            linear = shape.num_layers * (shape.layer_params - 2 * shape.hidden_size)
            # 4-bit: 0.5 byte + quantization constants; the rest (embeddings, LM head, norms) is cast to fp32 by peft
            base = linear * (0.53 if setup.qlora_bits == 4 else 1.03) + (n - linear) * 4
        else:
            base = n * (4 if setup.weights == "fp32" else 2)
        trained = lora_params(shape, setup)
        state_bytes = 2 + 2 + setup.optimizer_bytes if setup.weights == "pure_bf16" else 4 + 4 + setup.optimizer_bytes
        return base + trained * state_bytes
    trained = n if setup.method == "full" else setup.freeze_layers * shape.layer_params
    if setup.weights == "pure_bf16":
        return 2 * n + trained * (2 + setup.optimizer_bytes)
    weights = 4 * n + (2 * n if setup.weights == "mixed" else 0)  # autocast keeps bf16 copies during the step
    return weights + trained * (4 + setup.optimizer_bytes)


def token_bytes(shape: ModelShape, setup: TrainSetup, checkpointing: bool) -> float:
    """Activation bytes per token of a micro-batch."""
    layer = shape.layer_activation_bytes(setup.lora_dropout and setup.method in ("lora", "qlora"))
    if checkpointing:
        body = shape.num_layers * 2 * shape.hidden_size + layer  # stored layer inputs + one layer recomputed
    else:
        body = shape.num_layers * layer
    head = FUSED_HEAD_BYTES if setup.fused_lm_head else LOGIT_BYTES * shape.vocab_size
    return body + head + 4 * shape.hidden_size  # + embeddings output / final norm


def estimate_peak_bytes(shape: ModelShape, setup: TrainSetup, tokens: int, checkpointing: bool) -> float:
    head_fixed = FUSED_HEAD_FIXED if setup.fused_lm_head else 0
    return fixed_bytes(shape, setup) + head_fixed + tokens * token_bytes(shape, setup, checkpointing)


def plan_memory(shape: ModelShape, setup: TrainSetup, *, cutoff_len: int, wanted_tokens: int, free_bytes: float,
                checkpointing: bool | None = None) -> MemoryPlan:
    """Pick checkpointing (when ``checkpointing`` is None) and a token budget for the micro-batches.

    ``wanted_tokens`` is the micro-batch the run asks for (packing: per_device_batch_size examples of average length,
    or batch_tokens; padded batches: per_device_batch_size * cutoff_len). Checkpointing stays off when a micro-batch of
    at least min(wanted, 4096) tokens (and never less than one cutoff_len example) fits without it: recomputing every
    layer costs about a third more compute, while a smaller micro-batch of that size still keeps the GPU busy.
    """
    usable = free_bytes * HEADROOM - RESERVE_BYTES
    head_fixed = FUSED_HEAD_FIXED if setup.fused_lm_head else 0
    fixed = fixed_bytes(shape, setup) + head_fixed
    room = usable - fixed
    need = max(cutoff_len, 1)
    wanted = max(int(wanted_tokens), need)

    def budget(ckpt: bool) -> int:
        return max(0, int(room / token_bytes(shape, setup, ckpt)))

    no_ckpt, with_ckpt = budget(False), budget(True)
    if checkpointing is None:
        if no_ckpt >= max(need, min(wanted, SATURATING_TOKENS)):
            checkpointing, reason = False, f"auto: {min(wanted, no_ckpt)} tokens fit without checkpointing"
        else:
            checkpointing = True
            reason = f"auto: without checkpointing only {no_ckpt} tokens would fit"
    else:
        reason = "checkpointing as configured"
    room_tokens = with_ckpt if checkpointing else no_ckpt
    fits = room_tokens >= need
    tokens = min(wanted, room_tokens) if fits else need
    advice = ""
    if not fits:
        advice = (f"even one {cutoff_len}-token example does not fit ({fixed / GIB:.1f} GiB fixed of "
                  f"{free_bytes / GIB:.1f} GiB free): use QLoRA or LoRA, ZeRO-3 with CPU offload, a smaller cutoff_len "
                  "or a bigger GPU")
    elif tokens < wanted:
        advice = f"micro-batches cut from {wanted} to {tokens} tokens to fit"
    return MemoryPlan(
        gradient_checkpointing=checkpointing,
        batch_tokens=int(tokens),
        fits=fits,
        offload=not fits,
        free_gib=round(free_bytes / GIB, 2),
        fixed_gib=round(fixed / GIB, 2),
        token_kib=round(token_bytes(shape, setup, checkpointing) / 1024, 1),
        peak_gib=round(estimate_peak_bytes(shape, setup, tokens, checkpointing) / GIB, 2),
        reason=reason,
        advice=advice,
    )


def setup_for_run(config: RunConfig, precision: str, processes: int = 1) -> TrainSetup:
    """The TrainSetup of a run config; ``precision`` is the resolved compute type (bf16|fp16|fp32|pure_bf16)."""
    method = config.method
    weights = {"pure_bf16": "pure_bf16", "fp32": "fp32"}.get(precision, "mixed")
    dist = config.distributed
    sharded = dist.backend == "fsdp" or (dist.backend == "deepspeed" and dist.zero_stage == 3)
    return TrainSetup(
        method=method.name,
        weights=weights,
        optimizer=config.optimizer,
        lora_rank=getattr(method, "rank", 8),
        lora_targets=tuple(getattr(method, "targets", ("all-linear",))),
        lora_dropout=getattr(method, "dropout", 0.0) > 0,
        qlora_bits=getattr(method, "bits", 4),
        freeze_layers=getattr(method, "trainable_layers", 2),
        shards=processes if sharded else 1,
    )
