"""A route class answering :class:`backend.errors.StudioError` with its status and the one error body shape.

Interim: the app-wide exception handler (``backend/api/errors.py``) is being written at the same time; routers
that already raise domain errors use ``APIRouter(route_class=StudioErrorRoute)`` until it lands, then drop it.
Both give the same response, so clients see no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from backend.errors import StudioError


class StudioErrorRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer_studio_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except StudioError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return answer_studio_errors
