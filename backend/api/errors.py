"""The API's exception handlers: every error answer has one body shape, made here and nowhere else.

    {"message": str, "errors": [{"loc": [...], "msg": str}], "error_count": int, "hint"?: str}

Services raise :mod:`backend.errors` domain errors (each knows its status); FastAPI's request validation errors
(422) and Starlette's HTTP errors (404 for an unknown path, 405 for a method a path does not take, the upload
limit's 413) are rewritten into the same shape, so route functions carry no ``except`` blocks and clients read
one shape. A 422 never echoes the input back (a 200 MB body must not come back as a 200 MB error). Routes declare
what they can answer with :func:`error_responses`, which the OpenAPI document (and its fuzzing) relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from backend.errors import ErrorItem, StudioError

MAX_REPORTED_ERRORS = 20
MAX_MSG_CHARS = 500
FALLBACK_NAME = "api_fallback"


class ErrorEntry(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "learning_rate"], ["query", "model"], '
                                             '["line 3", "messages"]; empty when it concerns the whole request.')
    msg: str = Field(description="What is wrong there and, where possible, how to fix it.")


class ErrorBody(BaseModel):
    """The body of every 4xx (and 503/507) answer."""

    message: str = Field(description="One sentence saying what went wrong.")
    errors: list[ErrorEntry] = Field(description=f"The individual problems (at most {MAX_REPORTED_ERRORS}).")
    error_count: int = Field(description="How many problems were found (may exceed the number listed).")
    hint: str | None = Field(None, description="What to do about it, when known.")


_DESCRIPTIONS = {400: "The request cannot be read", 401: "Authentication needed", 403: "Forbidden",
                 404: "Not found", 405: "Method not allowed", 409: "Conflicts with the current state",
                 413: "Too large", 415: "Unsupported media type", 422: "Invalid input",
                 503: "Cannot be done right now", 507: "Not enough disk space"}


def error_responses(*families: type[StudioError] | int) -> dict[int | str, dict]:
    """``responses=`` for a route: the statuses of the given error families (or plain status codes), each with
    the one error body. 422 is always included (request validation can answer it on any route with input)."""
    statuses = {f if isinstance(f, int) else f.status for f in families} | {422}
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS.get(code, "Error")} for code in sorted(statuses)}


def _body(message: str, items: Iterable[ErrorItem], count: int | None = None, hint: str | None = None) -> dict:
    items = list(items)
    listed = [item.as_dict() for item in items[:MAX_REPORTED_ERRORS]]
    body = {"message": message, "errors": listed, "error_count": len(items) if count is None else count}
    if hint:
        body["hint"] = hint
    return body


def _loc_text(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "request"


def validation_body(exc: RequestValidationError | ValidationError) -> dict:
    """Validation errors as the one shape: loc and msg only (pydantic's ``input`` is left out)."""
    errors = exc.errors(include_input=False) if isinstance(exc, ValidationError) else exc.errors()
    items = [ErrorItem(tuple(err.get("loc", ())), str(err.get("msg", "invalid"))[:MAX_MSG_CHARS]) for err in errors]
    if not items:
        return _body("the request is invalid", [])
    first = items[0]
    more = f" ({len(items) - 1} more in 'errors')" if len(items) > 1 else ""
    return _body(f"{_loc_text(first.loc)}: {first.msg}{more}", items)


# Handlers take ``Exception`` (Starlette's handler type) and narrow: each is registered for one class only.
async def _studio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StudioError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(exc), status_code=422)


async def _model_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A pydantic model built from request data inside a service (not by FastAPI) refused it: still the
    client's input, so 422, never a 500."""
    assert isinstance(exc, ValidationError)
    return JSONResponse(validation_body(exc), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, dict) and "message" in detail:  # already the one shape (e.g. from middleware)
        body = {"message": str(detail["message"]), "errors": detail.get("errors", []),
                "error_count": detail.get("error_count", len(detail.get("errors", [])))}
    else:
        message = detail if isinstance(detail, str) else "request failed"
        body = _body(message, [ErrorItem((), message)])
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StudioError, _studio_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _model_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _document_validation_errors(app)


def _document_validation_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what error answers really carry: FastAPI documents its own
    ``HTTPValidationError`` on every route with input, whatever ``responses=`` a route declares."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, model in (("ErrorEntry", ErrorEntry), ("ErrorBody", ErrorBody)):
            schemas.setdefault(name, model.model_json_schema(ref_template="#/components/schemas/{model}"))
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                for code, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {}).get("application/json", {})
                    if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                        content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                        answer["description"] = _DESCRIPTIONS[422]
                    elif str(code)[0] in "45" and "content" not in answer:  # e.g. the security middleware's
                        answer["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _route_path(scope: MutableMapping[str, Any]) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(app: FastAPI, scope: MutableMapping[str, Any]) -> list[str]:
    """The methods the API's routes (not the fallback, not mounts) fully match for this path."""
    routes = [r for r in app.router.routes if not isinstance(r, Mount) and getattr(r, "name", None) != FALLBACK_NAME]
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)]


def install_api_fallback(app: FastAPI, prefix: str) -> None:
    """Answer every unmatched ``prefix/...`` request here: 405 (with ``Allow``) when the path exists with other
    methods, else 404, both in the one shape. Without it the studio UI mounted at ``/`` would take these requests
    and answer its own 404 page. Registered last among the API's routes; :func:`keep_fallback_last` keeps it so."""

    async def api_fallback(request: Request) -> JSONResponse:
        path = _route_path(request.scope)
        allowed = _allowed_methods(request.app, request.scope)
        if allowed:
            message = f"{request.method} is not allowed on {path}; it answers {', '.join(allowed)}"
            return JSONResponse(_body(message, [ErrorItem((), message)]), status_code=405,
                                headers={"Allow": ", ".join(allowed)})
        message = f"no API route at {path}; see {prefix}/openapi.json for the routes"
        return JSONResponse(_body(message, [ErrorItem((), message)]), status_code=404)

    app.add_api_route(f"{prefix}/{{rest_of_path:path}}", api_fallback, name=FALLBACK_NAME, include_in_schema=False,
                      methods=list(METHODS))


def keep_fallback_last(app: FastAPI) -> None:
    """Move the fallback after every API route added since (but before any mount, e.g. the UI at ``/``)."""
    routes = app.router.routes
    fallback = next((r for r in routes if getattr(r, "name", None) == FALLBACK_NAME), None)
    if fallback is None:
        return
    routes.remove(fallback)
    first_mount = next((i for i, r in enumerate(routes) if isinstance(r, Mount)), len(routes))
    routes.insert(first_mount, fallback)
