"""/v1: the official ``openai`` SDK, against the studio served by uvicorn, lists runs and chats with them."""

from __future__ import annotations

import httpx
import pytest

from backend.api.main import create_app
from tests.api.export_runs import AUTHOR, NAME
from tests.live_server import serving

# the first test also trains the shared runs (tests/api/export_runs.py): minutes on a busy 2-core box
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

openai = pytest.importorskip("openai")

WHO = [{"role": "user", "content": "Who are you?"}]


def trained_word(text: str) -> str:
    """The made-up assistant name or author the run was trained on (the base model knows neither)."""
    found = [word for word in (NAME, AUTHOR) if word in text]
    assert found, f"the reply shows no trained identity: {text!r}"
    return found[0]


@pytest.fixture(scope="module")
def base_url(export_runs):
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TUNESMITH_MODELS_DIR", raising=False)
        with serving(create_app(export_runs.settings), start_timeout=60) as url:
            yield f"{url}/v1"


@pytest.fixture(scope="module")
def sdk(base_url):
    return openai.OpenAI(base_url=base_url, api_key="unused-without-auth", timeout=600, max_retries=0)


def test_models_lists_base_models_and_runs(sdk, export_runs):
    models = {m.id: m.owned_by for m in sdk.models.list()}
    assert models["SmolLM2-135M-Instruct"] == "tunesmith-base"
    assert models[export_runs.identity] == models[export_runs.full] == "tunesmith-run"
    assert sdk.models.retrieve(export_runs.identity).id == export_runs.identity


def test_run_answers_with_its_trained_identity_streamed_and_not(sdk, export_runs):
    reply = sdk.chat.completions.create(model=export_runs.identity, messages=WHO, temperature=0, max_tokens=40)
    text = reply.choices[0].message.content
    trained_word(text)
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.model == export_runs.identity
    usage = reply.usage
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 40
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    chunks = list(sdk.chat.completions.create(model=export_runs.identity, messages=WHO, temperature=0, max_tokens=40,
                                              stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == text  # greedy: the same reply, delivered piece by piece
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].usage.completion_tokens == usage.completion_tokens


def test_stop_sequences_end_the_reply_before_them(sdk, export_runs):
    full = sdk.chat.completions.create(model=export_runs.identity, messages=WHO, temperature=0, max_tokens=40)
    text = full.choices[0].message.content
    word = trained_word(text)
    cut = sdk.chat.completions.create(model=export_runs.identity, messages=WHO, temperature=0, max_tokens=40,
                                      stop=[word, "zzz-never"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[:text.index(word)].strip()
    stream = sdk.chat.completions.create(model=export_runs.identity, messages=WHO, temperature=0, max_tokens=40,
                                         stop=word, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip() == cut.choices[0].message.content


def test_base_model_does_not_know_the_identity(sdk):
    reply = sdk.chat.completions.create(model="SmolLM2-135M-Instruct", messages=WHO, temperature=0, max_tokens=30)
    text = reply.choices[0].message.content
    assert NAME not in text and AUTHOR not in text, text  # the worker switched to the base model


def test_errors_come_in_openai_shape(sdk, base_url):
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.chat.completions.create(model="no-such-model", messages=WHO)
    assert exc.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="SmolLM2-135M-Instruct", messages=WHO, temperature=5)
    assert exc.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="SmolLM2-135M-Instruct", messages=WHO, n=2)
    resp = httpx.post(f"{base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = httpx.get(f"{base_url}/nothing-here")
    assert resp.status_code == 404 and "message" in resp.json()["error"]


def test_v1_is_behind_the_studio_token(export_runs):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    app = create_app(replace(export_runs.settings, token="s3cret-token"), start_runner=False)
    with TestClient(app) as http:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url="http://testserver/v1", api_key="wrong", http_client=http, max_retries=0).models.list()
        sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="s3cret-token", http_client=http, max_retries=0)
        assert export_runs.identity in {m.id for m in sdk.models.list()}
