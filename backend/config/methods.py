"""The sub-configs of a run that pick *how* it trains: the method (full | freeze | lora | qlora, a discriminated
union on ``name``) and the preference settings of stages dpo/kto. Pure pydantic, no torch; ``RunConfig`` in
``backend.config.schema`` holds them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DpoLoss = Literal["sigmoid", "ipo", "hinge", "sigmoid_norm", "apo_zero", "orpo", "simpo"]
REFERENCE_FREE_LOSSES = ("orpo", "simpo")  # no reference model is loaded or consulted
DEFAULT_BETA = 0.1  # DPO, KTO (trl, LLaMA-Factory)
SIMPO_DEFAULT_BETA = 2.0  # SimPO paper: beta 2.0-2.5, gamma / beta = 0.5


class StrictModel(BaseModel):
    """Unknown fields are errors, so a typo never silently falls back to a default; NaN and Infinity are not
    numbers a run can use (Python's JSON reader accepts them), so every float field refuses them (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FullMethod(StrictModel):
    """Update every weight of the model."""

    name: Literal["full"] = "full"


class FreezeMethod(StrictModel):
    """Train only the last N decoder layers; everything else stays frozen."""

    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(2, ge=1, le=1024, description="How many of the last decoder layers to train.")
    trainable_modules: list[str] | None = Field(
        None,
        description='Train only these parts of the last layers, e.g. ["mlp"] or ["self_attn"]; empty = the whole layers.',
    )
    extra_modules: list[str] = Field(
        default_factory=list,
        description='Modules outside the decoder layers that train too, e.g. ["embed_tokens", "lm_head", "norm"].',
    )


class LoraMethod(StrictModel):
    """Low-rank adapters on the chosen linear layers; the base weights stay frozen."""

    name: Literal["lora"] = "lora"
    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r (width of the low-rank update).")
    alpha: float = Field(16.0, gt=0, le=4096, description="LoRA alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout applied to the LoRA input.")
    targets: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        min_length=1,
        description='Module names to adapt, e.g. ["q_proj", "v_proj"], or ["all-linear"].',
    )
    use_rslora: bool = Field(False, description="Rank-stabilized LoRA: scale the update by alpha / sqrt(r) instead of alpha / r.")
    use_dora: bool = Field(
        False, description="DoRA: learn a per-column magnitude besides the low-rank direction update (slower, often better)."
    )
    init: Literal["default", "pissa", "gaussian"] = Field(
        "default",
        description="Adapter initialisation: default (B = 0), pissa (principal singular vectors of the weights, "
        "fast SVD; the saved adapter is converted back to a plain LoRA on the original base) or gaussian.",
    )
    loraplus_lr_ratio: float | None = Field(
        None, ge=1.0, le=1024.0, description="LoRA+: the B matrices learn at this many times the learning rate (e.g. 16)."
    )
    extra_trainable_modules: list[str] = Field(
        default_factory=list,
        description='Modules trained in full and saved with the adapter, e.g. ["embed_tokens", "lm_head"] '
        "(for new tokens or a new language).",
    )


class QLoraMethod(LoraMethod):
    """LoRA on a base model quantized with bitsandbytes (a CUDA GPU, or slowly on the CPU)."""

    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(4, description="Quantization width of the frozen base model.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    double_quant: bool = Field(True, description="Quantize the quantization constants too (saves ~0.4 bit/param).")


Method = Annotated[FullMethod | FreezeMethod | LoraMethod | QLoraMethod, Field(discriminator="name")]


class PreferenceConfig(StrictModel):
    """Preference training (stages dpo and kto): how far the model may move from the reference model, which
    loss, and the weights. The reference is the base model itself: with LoRA/QLoRA the base with the adapter
    switched off, with full/freeze a frozen copy; the losses orpo and simpo need none (none is loaded). Stages sft
    and pt ignore these settings."""

    beta: float | None = Field(
        None, gt=0.0, le=100.0,
        description="β: how strongly the trained model is held to the reference model (higher = stays closer; "
        "LLaMA-Factory's pref_beta). Default 0.1 (trl, LLaMA-Factory); for the ipo loss it is IPO's regularization "
        "τ; for simpo the reward scale (default 2.0, the SimPO paper's). The orpo loss has no β: see orpo_lambda.",
    )
    loss: DpoLoss = Field(
        "sigmoid",
        description="Stage dpo's loss: sigmoid = the DPO paper's; ipo = IPO (squared, on per-token averaged "
        "log-ratios; less prone to overfitting clear-cut pairs); hinge = SLiC's hinge; sigmoid_norm = DPO on per-token "
        "averaged log-ratios (no bias toward long replies); apo_zero = APO-zero (raise the chosen and lower the "
        "rejected reply in absolute terms, for chosen replies better than the model's own); orpo = ORPO (SFT loss "
        "on the chosen reply plus orpo_lambda x an odds-ratio term; no reference model); simpo = SimPO (length-"
        "normalized log-probabilities with a target margin simpo_gamma; no reference model). Stage kto always uses "
        "the KTO loss.",
    )
    sft_weight: float = Field(
        0.0, ge=0.0, le=100.0,
        description="Stage dpo: add this weight times the SFT loss on the chosen reply (its mean token NLL) to "
        "the preference loss, so the chosen replies stay likely (LLaMA-Factory's pref_ftx, RPO; with simpo: "
        "CPO-SimPO's α; e.g. 1.0). 0 = off. Not with orpo, whose loss already holds the SFT term.",
    )
    orpo_lambda: float = Field(
        0.1, gt=0.0, le=100.0,
        description="Loss orpo: λ, the weight of the odds-ratio term next to the SFT loss (the ORPO paper's 0.1; "
        "LLaMA-Factory passes it as pref_beta).",
    )
    simpo_gamma: float = Field(
        1.0, ge=0.0, le=100.0,
        description="Loss simpo: γ, the target reward margin between the chosen and the rejected reply (the SimPO "
        "paper's γ / β = 0.5 with β = 2.0; LLaMA-Factory's simpo_gamma).",
    )
    desirable_weight: float = Field(
        1.0, gt=0.0, le=100.0,
        description="Stage kto: weight of the loss on desirable examples (label true, or a pair's chosen reply). "
        "Raise it when undesirable examples outnumber desirable ones (KTO paper: weight x count ratio in [1, 4/3]).",
    )
    undesirable_weight: float = Field(
        1.0, gt=0.0, le=100.0,
        description="Stage kto: weight of the loss on undesirable examples (label false, or a pair's rejected reply).",
    )

    @property
    def reference_free(self) -> bool:
        """orpo and simpo compare the policy's own log-probabilities: no reference model."""
        return self.loss in REFERENCE_FREE_LOSSES

    @property
    def effective_beta(self) -> float:
        if self.beta is not None:
            return self.beta
        return SIMPO_DEFAULT_BETA if self.loss == "simpo" else DEFAULT_BETA

    def dpo_loss_problem(self) -> str | None:
        """Stage dpo: each loss's own settings only with that loss, so none is silently ignored."""
        for name, loss, default in (("orpo_lambda", "orpo", 0.1), ("simpo_gamma", "simpo", 1.0)):
            if getattr(self, name) != default and self.loss != loss:
                return (f"preference.{name} applies to the {loss} loss only and the loss is {self.loss!r}; set "
                        f"preference.loss to {loss!r} or reset {name} to {default}")
        if self.loss == "orpo" and self.beta is not None:
            return ("the orpo loss has no β (no reference model); its weight is preference.orpo_lambda: move "
                    f"the value {self.beta} there and clear preference.beta")
        if self.loss == "orpo" and self.sft_weight > 0:
            return ("the orpo loss already holds the SFT loss on the chosen reply; set preference.sft_weight to 0 "
                    "(raise orpo_lambda to weigh the preference term more)")
        return None
