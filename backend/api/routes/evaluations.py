"""Evaluate & predict: loss, perplexity and greedy predictions of a succeeded job or a base model on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse

from backend.api.deps import EvaluationsDep
from backend.api.errors import error_responses
from backend.api.schemas import (
    EvaluationParams,
    EvaluationProgress,
    EvaluationPublic,
    EvaluationsPublic,
    JobEvaluationCreate,
    ModelEvaluationCreate,
)
from backend.engine_process import EngineTimedOut
from backend.errors import Busy, Conflict, EngineFailed, Invalid, NotFound
from backend.evaluations import (
    EvalTarget,
    EvaluationService,
)

router = APIRouter(tags=["evaluations"])


def _run(evaluations: EvaluationService, target: EvalTarget, body: EvaluationParams | JobEvaluationCreate
         ) -> EvaluationPublic:
    with_base = body.with_base if isinstance(body, JobEvaluationCreate) else False
    metrics = evaluations.run(target, body.dataset, max_samples=body.max_samples, max_new_tokens=body.max_new_tokens,
                              cutoff_len=body.cutoff_len, with_base=with_base)
    return EvaluationPublic(**metrics)


def _predictions(evaluations: EvaluationService, root: Path, eval_id: str) -> FileResponse:
    path = evaluations.predictions_path(root, eval_id)
    return FileResponse(path, media_type="application/x-ndjson", filename=f"{eval_id}-predictions.jsonl")


RUN_ERRORS = error_responses(NotFound, Busy, EngineFailed, EngineTimedOut)
JOB_RUN_ERRORS = error_responses(NotFound, Conflict, Busy, Invalid, EngineFailed, EngineTimedOut)
NDJSON = {200: {"content": {"application/x-ndjson": {}}, "description": "One prediction per line: "
                '{"prompt": [...], "reference", "prediction", "exact_match", "rouge_l", "trimmed_turns"}.'},
          **error_responses(NotFound)}


@router.post("/jobs/{job_id}/evaluate", response_model=EvaluationPublic, status_code=status.HTTP_201_CREATED,
             responses=JOB_RUN_ERRORS)
def evaluate_job(job_id: str, body: JobEvaluationCreate, evaluations: EvaluationsDep) -> EvaluationPublic:
    """Evaluate a succeeded job (its adapter on its base model, or its trained model) on a dataset, or (no
    ``dataset``) on the rows it held out of training; ``with_base`` scores its base model on the same rows too
    (``base``, ``delta``). Each scored row says whether the run trained on it (``in_training``). A reward model
    (stage rm) is scored on preference pairs: ``pairwise_accuracy`` and ``mean_margin``. Waits for the result
    (seconds to minutes); one evaluation per job at a time (409 while one runs)."""
    return _run(evaluations, evaluations.job_target(job_id, for_running=True), body)


@router.get("/jobs/{job_id}/evaluations", response_model=EvaluationsPublic, responses=error_responses(NotFound))
def list_job_evaluations(job_id: str, evaluations: EvaluationsDep) -> EvaluationsPublic:
    """The job's evaluations, newest first."""
    found = evaluations.list(evaluations.job_target(job_id, for_running=False))
    return EvaluationsPublic(data=[EvaluationPublic(**m) for m in found], count=len(found))


@router.get("/jobs/{job_id}/evaluations/progress", response_model=EvaluationProgress,
            responses=error_responses(NotFound))
def job_evaluation_progress(job_id: str, evaluations: EvaluationsDep) -> EvaluationProgress:
    """How far the job's running evaluation is (phase, rows done of total, fraction); ``running`` false if none."""
    return EvaluationProgress(**evaluations.progress(evaluations.job_target(job_id, for_running=False)))


@router.get("/jobs/{job_id}/evaluations/{eval_id}/predictions", response_class=FileResponse, responses=NDJSON)
def job_predictions(job_id: str, eval_id: str, evaluations: EvaluationsDep) -> FileResponse:
    """predictions.jsonl of one of the job's evaluations."""
    return _predictions(evaluations, evaluations.job_target(job_id, for_running=False).root, eval_id)


@router.post("/evaluate", response_model=EvaluationPublic, status_code=status.HTTP_201_CREATED, responses=RUN_ERRORS)
def evaluate_model(body: ModelEvaluationCreate, evaluations: EvaluationsDep) -> EvaluationPublic:
    """Evaluate a base model on a dataset, to compare with the runs trained from it."""
    return _run(evaluations, evaluations.model_target(body.model), body)


@router.get("/evaluations", response_model=EvaluationsPublic)
def list_model_evaluations(
    evaluations: EvaluationsDep,
    model: Annotated[str | None, Query(description="Only this base model's evaluations.")] = None,
) -> EvaluationsPublic:
    """Base-model evaluations, newest first (a job's are under /jobs/{id}/evaluations)."""
    found = evaluations.list_base_models()
    if model is not None:
        found = [m for m in found if m.get("base_model") == model]
    return EvaluationsPublic(data=[EvaluationPublic(**m) for m in found], count=len(found))


@router.get("/evaluations/progress", response_model=EvaluationProgress, responses=error_responses(NotFound))
def model_evaluation_progress(
    evaluations: EvaluationsDep,
    model: Annotated[str, Query(min_length=1, description="The base model being evaluated.")],
) -> EvaluationProgress:
    """How far the base model's running evaluation is; ``running`` false if none."""
    return EvaluationProgress(**evaluations.progress(evaluations.model_target(model)))


@router.get("/evaluations/{eval_id}/predictions", response_class=FileResponse, responses=NDJSON)
def model_predictions(eval_id: str, evaluations: EvaluationsDep) -> FileResponse:
    """predictions.jsonl of a base-model evaluation."""
    return _predictions(evaluations, evaluations.base_root, eval_id)
