"""Answer an upload over the size limit with 413 while it is still arriving, not after it was stored.

Starlette spools a multipart file part to a temporary file (on disk past 1 MiB) before a route runs, so a check
in the route alone would let a 100 GB request fill the temp disk first. ``UploadLimitRoute`` counts the
request body as it is received and stops at ``Settings.max_upload_bytes`` plus ``FORM_OVERHEAD`` (boundaries,
part headers, the small text fields): a Content-Length above that is refused before a byte is read, a body
without one at the first chunk past it. Starlette then closes (and so deletes) the spooled part. The registry
still enforces the exact limit on the file itself and on a zip's unpacked size.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from starlette.types import Message

from backend.datasets.uploads import human_bytes

FORM_OVERHEAD = 64 * 1024


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"the upload is larger than the {human_bytes(limit)} limit. Split the file, or raise the limit "
               "with TUNESMITH_MAX_UPLOAD_BYTES when starting the server.",
    )


class UploadLimitRoute(APIRoute):
    """An APIRoute whose POST bodies may not exceed the app's ``settings.max_upload_bytes`` (+ FORM_OVERHEAD)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "POST" not in (self.methods or set()):
            return handler

        async def limited_handler(request: Request) -> Response:
            limit = request.app.state.settings.max_upload_bytes
            allowed = limit + FORM_OVERHEAD
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > allowed:
                raise _too_large(limit)
            receive, received = request.receive, 0

            async def counting_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > allowed:
                        raise _too_large(limit)
                return message

            return await handler(Request(request.scope, counting_receive))

        return limited_handler
