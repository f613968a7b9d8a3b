"""The Chat tab: its components exist, targets map to API bodies, a turn round-trips through the client."""

from __future__ import annotations

import json

import httpx
import pytest

gr = pytest.importorskip("gradio")

from app.client import TunesmithClient  # noqa: E402
from app.pages.chat import answer_turn, api_messages, parse_target, plain_history, target_choices  # noqa: E402


def _client(handler) -> TunesmithClient:
    return TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))


def test_chat_tab_is_built() -> None:
    from app.main import build_app

    demo = build_app("http://127.0.0.1:9/api/v1")
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    needed = {"tab-chat", "chat-target", "chatbot", "chat-input", "chat-send", "chat-clear", "chat-system",
              "chat-max-tokens", "chat-temperature", "chat-status"}
    assert needed <= ids, sorted(needed - ids)


def test_targets_list_base_models_then_succeeded_runs() -> None:
    models = [{"id": "SmolLM2-135M-Instruct"}, {"id": "tiny"}]
    jobs = [
        {"id": "job_old", "name": "old", "state": "succeeded", "finished_at": "2024-01-01", "output": "adapter",
         "config": {"method": {"name": "lora"}}, "has_merged": True},
        {"id": "job_new", "state": "succeeded", "finished_at": "2024-02-01", "output": "model",
         "config": {"method": {"name": "full"}}},
        {"id": "job_run", "state": "running"},
    ]
    choices = target_choices(models, jobs)
    assert [v for _, v in choices] == ["model:SmolLM2-135M-Instruct", "model:tiny", "job:job_new", "job:job_old"]
    assert "lora → merged" in choices[3][0] and "full → model" in choices[2][0]
    assert parse_target("model:tiny") == {"model": "tiny"} and parse_target("job:job_1") == {"job_id": "job_1"}
    assert parse_target(None) == {}


def test_history_from_gradio_blocks_becomes_api_messages() -> None:
    history = [{"role": "user", "content": [{"type": "text", "text": "hi"}], "metadata": None},
               {"role": "assistant", "content": "hello"}]
    assert plain_history(history) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert api_messages(history, "  Be brief. ")[0] == {"role": "system", "content": "Be brief."}
    assert len(api_messages(history, "")) == 2


def last(updates):
    *_, final = updates
    return final


def test_a_turn_streams_and_a_failure_gives_the_message_back() -> None:
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        assert request.url.path.endswith("/chat/stream")
        if body.get("job_id") == "job_bad":
            return httpx.Response(409, json={"message": "job job_bad is failed; only a succeeded job can be chatted with", "errors": [], "error_count": 1})
        if body.get("job_id") == "job_midway":
            return httpx.Response(200, text='{"delta": "Fo"}\n{"error": "chat failed: worker died"}\n')
        lines = [{"delta": "Fo"}, {"delta": "ur"}, {"done": True, "text": "Four", "tokens": 2, "seconds": 0.5,
                                                    "trimmed_turns": 2, "target": {"label": "tiny", "kind": "base",
                                                                                   "model_dir": "/m"}}]
        return httpx.Response(200, text="".join(json.dumps(line) + "\n" for line in lines),
                              headers={"content-type": "application/x-ndjson"})

    client = _client(handler)
    history = [{"role": "user", "content": "2+2?"}]
    updates = list(answer_turn(client, history, "model:tiny", "Be brief.", 16.0, 0.0, 0.9))
    assert [u[0][-1]["content"] for u in updates] == ["Fo", "Four", "Four"]  # the reply grows, then settles
    chat, text, status = updates[-1]
    assert chat[-1] == {"role": "assistant", "content": "Four"} and "2 tokens in 0.50 s" in status
    assert "oldest 2 message(s) were left out" in status
    assert sent[0] == {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
                       "max_new_tokens": 16, "temperature": 0.0, "top_p": 0.9, "model": "tiny"}

    chat, text, status = last(answer_turn(client, history, "job:job_bad", "", 16, 0.7, 0.9))
    assert chat == [] and text == "2+2?" and "only a succeeded job" in status
    chat, text, status = last(answer_turn(client, history, "job:job_midway", "", 16, 0.7, 0.9))
    assert chat == [] and text == "2+2?" and "worker died" in status  # the partial reply is gone too
    chat, text, status = last(answer_turn(client, history, None, "", 16, 0.7, 0.9))
    assert chat == [] and text == "2+2?" and "Pick a base model" in status
    assert len(sent) == 3


def test_stop_ends_the_reply_keeps_what_was_written_and_closes_the_stream() -> None:
    """Issue 12 group 2: Stop generation. The reply stops at the next piece, the partial text stays in the
    conversation, and the API stream is closed (so the API's chat worker is free for the next message)."""
    import httpx

    from app.pages.chat import StopRequests

    closed = []

    class Lines(httpx.SyncByteStream):
        def __iter__(self):
            for piece in ("Fo", "ur", " and", " more"):
                yield (json.dumps({"delta": piece}) + "\n").encode()
            yield (json.dumps({"done": True, "text": "Four and more", "tokens": 4, "seconds": 1.0}) + "\n").encode()

        def close(self):
            closed.append(True)

    client = _client(lambda request: httpx.Response(200, stream=Lines(),
                                                    headers={"content-type": "application/x-ndjson"}))
    stops = StopRequests()
    stopped = stops.start("session-1")
    updates = []
    for update in answer_turn(client, [{"role": "user", "content": "2+2?"}], "model:tiny", "", 16, 0.0, 0.9,
                              lang="zh", stopped=stopped):
        updates.append(update)
        stops.stop("session-1")  # pressed while the first piece shows
    chat, text, status = updates[-1]
    assert chat[-1] == {"role": "assistant", "content": "Four"} and "已停止" in status
    assert closed, "the API stream was left open"
