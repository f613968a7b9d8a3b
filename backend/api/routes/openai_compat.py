"""An OpenAI-compatible endpoint on the studio's port: ``GET /v1/models``, ``POST /v1/chat/completions``.

Any OpenAI client works against it (``OpenAI(base_url="http://127.0.0.1:7860/v1", api_key=...)``); ``model`` is a
base model id from ``GET /v1/models`` or a succeeded run's job id (its merged model, trained model, or adapter on
its base). Generation goes through the studio's one chat worker (``backend.chat.manager``): one model is loaded at
a time, so a request naming another model than the last one waits while the worker switches to it (seconds to
minutes), and requests are answered one after another.

This is its own small FastAPI app mounted at ``/v1``, so every error under ``/v1`` - bad JSON, an unknown route,
an unknown model - comes back in OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``. It is
mounted inside the studio app, so the studio's middleware (authentication, Host/Origin checks) covers it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Generator, Iterator
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import catalog
from backend.chat.manager import ChatManager, ChatTarget, ChatTargetNotFound, ChatTargetUnavailable
from backend.chat.worker_process import ChatTimeout, ChatWorkerError
from backend.errors import StudioError
from backend.jobs.reward_model_use import RewardModelCannotGenerate, is_reward_model
from backend.jobs.service import JobService


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="A base model id or a succeeded run's job id (GET /v1/models).")
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=8192, description="Reply length limit (default 512).")
    max_completion_tokens: int | None = Field(None, ge=1, le=8192, description="Same as max_tokens.")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings that end the reply (not included).")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported.")
    tools: list | None = Field(None, max_length=0, description="Not supported: leave out.")
    logprobs: bool | None = Field(None, description="Not supported: leave out or false.")


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = ("invalid_request_error" if status in (400, 404, 409, 413, 422) else
            "authentication_error" if status in (401, 403) else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


def _text(message: Message) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    if any(part.type != "text" for part in message.content):
        raise StudioError("only text content parts are supported", loc=("body", "messages"))
    return "".join(part.text or "" for part in message.content)


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def _resolve(chat: ChatManager, model: str) -> ChatTarget:
    try:
        if model.startswith("job_"):
            return chat.resolve(job_id=model)
        return chat.resolve(model=model)
    except ChatTargetNotFound as exc:
        raise OpenAIError(404, f"{exc}; GET /v1/models lists what can be used", "model", "model_not_found") from None
    except ChatTargetUnavailable as exc:
        raise OpenAIError(409, str(exc), "model", "model_not_ready") from None
    except RewardModelCannotGenerate as exc:
        raise OpenAIError(422, f"{exc.message}; {exc.hint}", "model", "model_not_supported") from None


def _usage(final: dict) -> dict:
    prompt, completion = int(final.get("prompt_tokens", 0)), int(final.get("tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _first(events: Iterator[dict]) -> dict:
    try:
        return next(events)
    except ChatTimeout as exc:
        raise OpenAIError(503, str(exc), code="timeout") from None
    except ChatWorkerError as exc:
        raise OpenAIError(422, f"the model could not answer: {exc}", code="generation_failed") from None


def build_app(chat: ChatManager, jobs: JobService, settings) -> FastAPI:
    app = FastAPI(title="Tunesmith OpenAI-compatible API", docs_url=None, redoc_url=None)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError):
        return _error(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(StudioError)
    async def studio_error(_: Request, exc: StudioError):
        return _error(exc.status, exc.message, ".".join(map(str, exc.loc[1:])) or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error(400, f"{param or 'body'}: {first.get('msg')}", param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    def model_entry(model_id: str, created: int, owned_by: str) -> dict:
        return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}

    @app.get("/models")
    def list_models() -> dict:
        """Base models (owned_by ``tunesmith-base``) and succeeded runs (``tunesmith-run``), runs newest first."""
        data = [model_entry(m.id, 0, "tunesmith-base") for m in catalog.list_models(settings)]
        runs = [job for job in jobs.list() if job.state == "succeeded" and not is_reward_model(job)]
        data += [model_entry(job.id, _epoch(job.finished_at or job.created_at), "tunesmith-run") for job in runs]
        return {"object": "list", "data": data}

    @app.get("/models/{model_id}")
    def get_model(model_id: str) -> dict:
        for entry in list_models()["data"]:
            if entry["id"] == model_id:
                return entry
        raise OpenAIError(404, f"no model {model_id!r}; GET /v1/models lists them", "model", "model_not_found")

    @app.post("/chat/completions")
    def chat_completions(body: ChatCompletionCreate):
        if body.logprobs:
            raise OpenAIError(400, "logprobs are not supported", "logprobs")
        target = _resolve(chat, body.model)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m)} for m in body.messages]
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stop) > 4:
            raise OpenAIError(400, "at most 4 stop sequences", "stop")
        events = chat.chat_stream(target, messages, max_new_tokens=body.max_completion_tokens or body.max_tokens or 512,
                                  temperature=body.temperature, top_p=body.top_p, stream=body.stream, stop=stop)
        completion_id, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
        first = _first(events)  # loads the model and starts generating: failures here are plain HTTP errors
        if not body.stream:
            return {"id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": first["text"]},
                                 "finish_reason": first.get("finish_reason", "stop"), "logprobs": None}],
                    "usage": _usage(first)}
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_sse(events, first, completion_id, created, body.model, include_usage),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _sse(events: Generator[dict, None, None], first: dict, completion_id: str, created: int, model: str,
         include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else []}
        if include_usage:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    event = first
    try:
        while "delta" in event:
            yield chunk({"content": event["delta"]})
            event = next(events)
        yield chunk({}, event.get("finish_reason", "stop"))
        if include_usage:
            yield chunk({}, usage=_usage(event), choices=False)
    except ChatWorkerError as exc:
        yield f"data: {json.dumps({'error': {'message': f'generation failed: {exc}', 'type': 'server_error'}})}\n\n"
    finally:
        events.close()
    yield "data: [DONE]\n\n"


def _epoch(timestamp: str | None) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
