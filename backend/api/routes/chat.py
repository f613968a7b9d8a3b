"""Chat with a base model or a succeeded job (its adapter, trained model or merged model)."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from backend.api.deps import ChatDep
from backend.api.errors import error_responses
from backend.api.schemas import ChatCreate, ChatReply, ChatTargetPublic
from backend.chat.manager import ChatManager, ChatTargetNotFound, ChatTargetUnavailable
from backend.chat.worker_process import ChatTimeout, ChatWorkerError

router = APIRouter(prefix="/chat", tags=["chat"])




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


def _events(chat: ChatManager, target, body: ChatCreate, *, stream: bool) -> Generator[dict, None, None]:
    return chat.chat_stream(target, [m.model_dump() for m in body.messages], max_new_tokens=body.max_new_tokens,
                            temperature=body.temperature, top_p=body.top_p, stream=stream)


def _first(events: Iterator[dict]) -> dict:
    """The first event; a worker failure propagates (ChatWorkerError: 422 with its words, ChatTimeout: 503)."""
    return next(events)
