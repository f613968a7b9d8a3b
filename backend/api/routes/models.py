from __future__ import annotations

from fastapi import APIRouter, Query

from backend import catalog
from backend.api.deps import SettingsDep
from backend.api.errors import error_responses
from backend.api.schemas import ModelPublic, ModelsPublic, SuggestionPublic
from backend.errors import NotFound
from backend.jobs.gpus import query_gpus
from backend.jobs.suggest import ModelNotSizable, suggest_settings

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsPublic)
def list_models(settings: SettingsDep) -> ModelsPublic:
    """The bundled model and every HF-format model directory under the models root."""
    models = [ModelPublic(**m.to_dict()) for m in catalog.list_models(settings)]
    return ModelsPublic(data=models, count=len(models))


@router.get("/suggest", response_model=SuggestionPublic, responses=error_responses(NotFound, ModelNotSizable))
def suggest(settings: SettingsDep, model: str = Query(..., min_length=1, description="A model id, or an absolute "
                                                       "path to an HF-format model directory.")) -> SuggestionPublic:
    """Suggested settings for training ``model`` on this machine: method (LoRA, else QLoRA when LoRA does not fit
    the free GPU memory), LoRA rank, learning rate, batch shape and cutoff for the model's size, with the reasons.
    The memory estimate is the one the engine's plan uses when the run starts."""
    info = catalog.resolve_model(settings, model)
    if info is None:
        known = ", ".join(m.id for m in catalog.list_models(settings)) or "none"
        raise NotFound(f"unknown model {model!r}; available: {known}", loc=("query", "model"))
    suggestion = suggest_settings(info.path, query_gpus(), model=model)
    return SuggestionPublic(model=info.id, **suggestion.to_dict())
