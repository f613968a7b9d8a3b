"""Chat with a base model or a succeeded job (its adapter, trained model or merged model)."""

from __future__ import annotations

import json
from typing import Annotated, Iterator, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from backend.api.errors import error_responses
from backend.chat.manager import ChatManager, ChatTargetNotFound, ChatTargetUnavailable
from backend.chat.worker import ChatTimeout, ChatWorkerError

router = APIRouter(prefix="/chat", tags=["chat"])


def get_chat(request: Request) -> ChatManager:
    return request.app.state.chat


ChatDep = Annotated[ChatManager, Depends(get_chat)]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCreate(BaseModel):
    model: str | None = Field(None, description="A model id from GET /api/v1/models, or an absolute path to an "
                                                "HF-format model directory. Exactly one of model / job_id.")
    job_id: str | None = Field(None, description="A succeeded job: its merged model if there is one, else its "
                                                 "adapter on the base model (LoRA), or its trained model.")
    messages: list[ChatMessage] = Field(..., min_length=1, description="The conversation so far, oldest first.")
    max_new_tokens: int = Field(128, ge=1, le=2048, description="Upper bound on the reply length in tokens.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass (ignored when greedy).")

    @model_validator(mode="after")
    def _one_target(self) -> "ChatCreate":
        if (self.model is None) == (self.job_id is None):
            raise ValueError("give exactly one of 'model' (a base model) or 'job_id' (a succeeded job)")
        return self


class ChatTargetPublic(BaseModel):
    label: str
    kind: Literal["base", "adapter", "merged", "model"]
    model_dir: str
    adapter_dir: str | None = None


class ChatReply(BaseModel):
    text: str
    tokens: int = Field(description="Tokens generated.")
    seconds: float = Field(description="Generation time (model loading excluded).")
    trimmed_turns: int = Field(0, description="Oldest turns left out because the conversation was longer than the "
                                              "model's context (the system prompt and the last message always stay).")
    target: ChatTargetPublic


CHAT_ERRORS = error_responses(ChatTargetNotFound, ChatTargetUnavailable, ChatWorkerError, ChatTimeout)


@router.post("", response_model=ChatReply, responses=CHAT_ERRORS)
def chat(body: ChatCreate, chat: ChatDep) -> ChatReply:
    """One assistant reply. The first request for a target loads it (seconds to minutes); later ones reuse it."""
    target = _resolve(chat, body)
    events = _events(chat, target, body, stream=False)
    return ChatReply(**_first(events), target=ChatTargetPublic(**target.to_dict()))


@router.post("/stream", responses={200: {"content": {"application/x-ndjson": {}},
                                          "description": "One JSON object per line: {\"delta\": text} while "
                                          "the reply is generated, then the ChatReply fields plus \"done\": "
                                          "true, or {\"error\": message} if generation fails midway."},
                                     **CHAT_ERRORS})
def chat_stream(body: ChatCreate, chat: ChatDep) -> StreamingResponse:
    """The reply as it is generated (NDJSON). Loading errors still come back as 4xx/503 before any line."""
    target = _resolve(chat, body)
    events = _events(chat, target, body, stream=True)
    first = _first(events)  # loads the model and starts generating; failures here are plain HTTP errors
    public = ChatTargetPublic(**target.to_dict()).model_dump()

    def lines() -> Iterator[str]:
        event = first
        try:
            while True:
                if "delta" in event:
                    yield json.dumps(event) + "\n"
                else:
                    yield json.dumps({**event, "done": True, "target": public}) + "\n"
                    return
                event = next(events)
        except ChatWorkerError as exc:
            yield json.dumps({"error": f"chat failed: {exc}"}) + "\n"
        finally:
            events.close()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _resolve(chat: ChatManager, body: ChatCreate):
    return chat.resolve(model=body.model, job_id=body.job_id)


def _events(chat: ChatManager, target, body: ChatCreate, *, stream: bool) -> Iterator[dict]:
    return chat.chat_stream(target, [m.model_dump() for m in body.messages], max_new_tokens=body.max_new_tokens,
                            temperature=body.temperature, top_p=body.top_p, stream=stream)


def _first(events: Iterator[dict]) -> dict:
    """The first event; a worker failure propagates (ChatWorkerError: 422 with its words, ChatTimeout: 503)."""
    return next(events)
