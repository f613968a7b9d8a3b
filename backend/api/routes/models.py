from __future__ import annotations

from fastapi import APIRouter

from backend import catalog
from backend.api.deps import SettingsDep
from backend.api.schemas import ModelPublic, ModelsPublic

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsPublic)
def list_models(settings: SettingsDep) -> ModelsPublic:
    """The bundled model and every HF-format model directory under the models root."""
    models = [ModelPublic(**m.to_dict()) for m in catalog.list_models(settings)]
    return ModelsPublic(data=models, count=len(models))
