"""The FastAPI application factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from backend.api.errors import install_api_fallback, install_error_handlers, keep_fallback_last
from backend.api.routes import (
    capabilities,
    chat,
    configs,
    datasets,
    evaluations,
    exports,
    jobs,
    model_downloads,
    model_exports,
    models,
    openai_compat,
    presets,
    rewards,
    system,
)
from backend.api.security import install_security
from backend.chat.manager import ChatManager
from backend.datasets.builtin import BUILTIN_DATASETS
from backend.datasets.registry import DatasetRegistry
from backend.evaluations import EvaluationService
from backend.exports.service import ExportService
from backend.home_access import home_write_problem, read_only_settings
from backend.jobs.runner import JobRunner, SpawnFn, spawn_training
from backend.jobs.service import JobService
from backend.jobs.store import JobStore
from backend.settings import Settings
from backend.version import studio_version

API_PREFIX = "/api/v1"
log = logging.getLogger("tunesmith.api")


def create_app(settings: Settings | None = None, *, start_runner: bool = True,
               spawn: SpawnFn = spawn_training, register_builtins: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    if problem := home_write_problem(settings):  # serve what is there; writes answer 503 (backend/api/security.py)
        settings = read_only_settings(settings, problem)
        start_runner = register_builtins = False
        log.warning("%s: serving it read-only (browsing works; uploads, jobs and other changes answer 503)", problem)
    else:
        settings.ensure_dirs()
    registry = DatasetRegistry(settings)
    store = JobStore(settings.db_path)
    runner = JobRunner(store, max_concurrent=settings.max_concurrent_jobs, max_cpu_jobs=settings.max_cpu_jobs,
                       spawn=spawn)
    service = JobService(settings, store, runner, registry)
    chat_manager = ChatManager(settings, service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if register_builtins and BUILTIN_DATASETS.is_dir():
            try:
                registry.register_builtin(BUILTIN_DATASETS)
            except Exception:
                log.exception("could not register the built-in demo datasets")
        keep_fallback_last(app)  # after routers added since create_app, before the UI mounted at /
        if start_runner:
            runner.start()
        try:
            yield
        finally:
            chat_manager.close()
            runner.stop()

    app = FastAPI(
        title="Tunesmith API",
        version=studio_version(),
        description="Upload datasets, queue fine-tuning jobs, follow their metrics, export adapters and merged models.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",  # the API's (Gradio, mounted at /, keeps its own elsewhere)
    )
    install_security(app, settings)
    app.state.settings = settings
    app.state.registry = registry
    app.state.jobs = service
    app.state.runner = runner
    app.state.chat = chat_manager
    app.state.evaluations = EvaluationService(settings, service, registry)
    app.state.exports = ExportService(service)
    for module in (system, datasets, models, jobs, exports, evaluations, chat):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(presets.router, prefix=API_PREFIX)
    app.include_router(configs.router, prefix=API_PREFIX)
    app.include_router(model_downloads.router, prefix=API_PREFIX)
    app.include_router(model_exports.router, prefix=API_PREFIX)
    app.include_router(rewards.router, prefix=API_PREFIX)
    app.include_router(capabilities.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def openapi_under_api_prefix() -> dict:
        """The same document as /openapi.json, beside the routes it describes."""
        return app.openapi()

    # mounted after every API route: the fallback below is kept before the first mount (keep_fallback_last)
    app.mount("/v1", openai_compat.build_app(chat_manager, service, settings))  # OpenAI clients; errors in their shape
    install_error_handlers(app)
    install_api_fallback(app, API_PREFIX)  # keep last among the API's routes
    return app
