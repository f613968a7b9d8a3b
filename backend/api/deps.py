"""FastAPI dependencies: typed access to the services held on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.datasets.registry import DatasetRegistry
from backend.jobs.service import JobService
from backend.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_jobs(request: Request) -> JobService:
    return request.app.state.jobs


def get_registry(request: Request) -> DatasetRegistry:
    return request.app.state.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
RegistryDep = Annotated[DatasetRegistry, Depends(get_registry)]
