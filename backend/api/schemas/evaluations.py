"""Evaluations: what to evaluate on, and metrics.json of one evaluation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvaluationParams(BaseModel):
    dataset: str = Field(..., min_length=1, description="A registered dataset's id or name.")
    max_samples: int = Field(50, ge=1, le=1000, description="Evaluate on the first N usable rows.")
    max_new_tokens: int = Field(128, ge=1, le=2048, description="Upper bound on each predicted reply, in tokens.")
    cutoff_len: int | None = Field(None, ge=8, le=1_048_576, description="Tokens per example for the loss; "
                                   "default: the run's cutoff_len (1024 for a base model).")


class ModelEvaluationCreate(EvaluationParams):
    model: str = Field(..., min_length=1, description="A model id from GET /api/v1/models, or an absolute path "
                                                      "to an HF-format model directory.")


class EvaluationPublic(BaseModel):
    """metrics.json of one evaluation (fractions in [0, 1]; null where nothing was measured)."""

    model_config = ConfigDict(extra="allow")
    id: str
    created_at: str
    job_id: str | None = None
    base_model: str | None = None
    dataset_id: str
    dataset: str
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
