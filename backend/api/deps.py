"""FastAPI dependencies: typed access to the services held on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.chat.manager import ChatManager
from backend.datasets.preview_service import PreviewService
from backend.datasets.registry import DatasetRegistry
from backend.evaluations import EvaluationService
from backend.exports.service import ExportService
from backend.jobs.service import JobService
from backend.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_jobs(request: Request) -> JobService:
    return request.app.state.jobs


def get_registry(request: Request) -> DatasetRegistry:
    return request.app.state.registry


def get_chat(request: Request) -> ChatManager:
    return request.app.state.chat


def get_evaluations(request: Request) -> EvaluationService:
    return request.app.state.evaluations


def get_exports(request: Request) -> ExportService:
    return request.app.state.exports


def get_preview_service(request: Request) -> PreviewService:
    """The dataset preview runner (created on first use: most sessions never preview)."""
    service = getattr(request.app.state, "preview_service", None)
    if service is None:
        service = request.app.state.preview_service = PreviewService()
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
RegistryDep = Annotated[DatasetRegistry, Depends(get_registry)]
ChatDep = Annotated[ChatManager, Depends(get_chat)]
EvaluationsDep = Annotated[EvaluationService, Depends(get_evaluations)]
PreviewServiceDep = Annotated[PreviewService, Depends(get_preview_service)]
ExportsDep = Annotated[ExportService, Depends(get_exports)]
