"""Evaluations: what to evaluate on, and metrics.json of one evaluation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EvaluationSettings(BaseModel):
    max_samples: int = Field(50, ge=1, le=1000, description="Evaluate on the first N usable rows.")
    max_new_tokens: int = Field(128, ge=1, le=2048, description="Upper bound on each predicted reply, in tokens.")
    cutoff_len: int | None = Field(None, ge=8, le=1_048_576, description="Tokens per example for the loss; "
                                   "default: the run's cutoff_len (1024 for a base model).")


class EvaluationParams(EvaluationSettings):
    dataset: str = Field(..., min_length=1, description="A registered dataset's id or name.")


class ModelEvaluationCreate(EvaluationParams):
    model: str = Field(..., min_length=1, description="A model id from GET /api/v1/models, or an absolute path "
                                                      "to an HF-format model directory.")


class JobEvaluationCreate(EvaluationSettings):
    dataset: str | None = Field(None, min_length=1, description="A registered dataset's id or name; omitted: the "
                                "rows the run held out of training (its val_size share or validation datasets).")
    with_base: bool = Field(False, description="Also score the run's base model on the same rows (a reward model: "
                            "the base with the untrained head the run started from), side by side with the run.")


class EvaluationPublic(BaseModel):
    """metrics.json of one evaluation (fractions in [0, 1]; null where nothing was measured)."""

    model_config = ConfigDict(extra="allow")
    id: str
    created_at: str
    job_id: str | None = None
    base_model: str | None = None
    dataset_id: str | None = Field(None, description="The registered dataset scored; null for a held-out split.")
    dataset: str
    split: str = Field("dataset", description="'dataset' (a registered dataset's first rows) or 'held_out' (the "
                       "rows the run held out of training).")
    in_training: int | None = Field(None, description="A run's evaluation: how many of the scored rows the run "
                                    "trained on (0 for a clean held-out split); null for a base model.")
    base: dict[str, Any] | None = Field(None, description="with_base: the base model's numbers on the same rows "
                                        "(same keys as the run's).")
    delta: dict[str, float] | None = Field(None, description="with_base: run minus base, per metric.")
    pairwise_accuracy: float | None = Field(None, description="A reward model: share of pairs whose chosen reply "
                                            "scores above the rejected one.")
    mean_margin: float | None = Field(None, description="A reward model: mean r(chosen) - r(rejected).")
    loss: float | None = Field(description="Mean NLL per trained token (training's own tokenization and mask).")
    perplexity: float | None = Field(description="exp(loss).")
    exact_match: float | None = Field(description="Share of predictions equal to the reference (whitespace aside).")
    rouge_l: float | None = Field(description="Mean ROUGE-L F1 over lowercased word tokens.")
    bleu: float | None = Field(None, description="Corpus BLEU-4 (sacrebleu), as a fraction.")
    samples: int = Field(description="Rows evaluated.")
    predictions: int = Field(description="Rows with a prediction (raw text has none; see 'skipped').")
    model: str
    adapter: str | None
    seconds: float


class EvaluationsPublic(BaseModel):
    data: list[EvaluationPublic]
    count: int


class EvaluationProgress(BaseModel):
    """How far a target's running evaluation is (``running`` false when none runs)."""

    running: bool
    eval_id: str | None = None
    phase: str | None = Field(None, description="'run:loss', 'run:predictions', 'base:loss', 'base:predictions' "
                              "(a reward model: 'run:pairs', 'base:pairs'); null while the model loads.")
    phase_index: int | None = None
    phases: int | None = None
    done: int | None = Field(None, description="Rows (loss: examples) done in this phase.")
    total: int | None = None
    fraction: float | None = Field(None, description="Share of the whole evaluation done, in [0, 1].")
