"""No 500 for anything a client sends: NaN/Infinity, `~user` paths, megabyte inputs in a 422, deep nesting,
a full disk. Each answers a 4xx (or 507) in the one error shape, naming the field, and keeps nothing."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.datasets import uploads
from backend.settings import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture
def api(tmp_path):
    with TestClient(create_app(Settings(home=tmp_path / "home"), start_runner=False)) as client:
        yield client


def user_datasets(api) -> list[str]:
    return [d["name"] for d in api.get("/api/v1/datasets").json()["data"] if not d["builtin"]]


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["error_count"] == len(body["errors"]) >= 1 and body["message"]
    if field is not None:
        assert any(field in [str(part) for part in e["loc"]] or field in e["msg"] for e in body["errors"]), body
    return body


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["learning_rate", "num_epochs", "warmup_ratio", "max_grad_norm", "lora_alpha"])
def test_nan_and_infinity_in_a_run_config_are_422_naming_the_field(api, field, literal):
    body = f'{{"base_model": "m", "datasets": ["identity"], "method": "lora", "{field}": {literal}}}'
    for path in ("/api/v1/jobs", "/api/v1/jobs/preview"):
        answer = assert_error(api.post(path, content=body, headers=JSON), 422, field.removeprefix("lora_"))
        assert "NaN" not in json.dumps(answer) and "Infinity" not in json.dumps(answer)
    assert api.get("/api/v1/jobs").json()["count"] == 0


@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_nan_in_a_chat_request_is_422(api, field):
    body = f'{{"model": "m", "messages": [{{"role": "user", "content": "hi"}}], "{field}": NaN}}'
    assert_error(api.post("/api/v1/chat", content=body, headers=JSON), 422, field)


@pytest.mark.parametrize("user", ["root", "no-such-user-4242"])
def test_tilde_paths_are_422_and_do_not_tell_which_users_exist(api, user):
    answers = [
        api.post("/api/v1/jobs", json={"base_model": f"~{user}/models/x", "datasets": ["identity"]}),
        api.post("/api/v1/evaluate", json={"model": f"~{user}/m", "dataset": "identity"}),
        api.post("/api/v1/chat", json={"model": f"~{user}/m", "messages": [{"role": "user", "content": "hi"}]}),
        api.get("/api/v1/models/suggest", params={"model": f"~{user}"}),
        api.post("/api/v1/datasets/import", json={"path": f"~{user}/data"}),
    ]
    for answer in answers:
        body = assert_error(answer, 422)
        assert "not expanded" in body["message"] and "/root" not in body["message"]


def test_a_422_never_echoes_megabytes(api):
    huge = "x" * (4 * 1024 * 1024)
    answer = api.post("/api/v1/jobs", json={"base_model": "m", "datasets": ["identity"], "learning_rate": huge})
    assert answer.status_code == 422 and len(answer.content) < 20_000


def test_deeply_nested_upload_is_422_with_file_line_and_field(api):
    deep = '{"instruction": "q", "output": "a", "history": ' + "[" * 50_000 + "]" * 50_000 + "}"
    content = json.dumps({"instruction": "a", "output": "b"}) + "\n" + deep + "\n"
    answer = api.post("/api/v1/datasets", files={"file": ("deep.jsonl", io.BytesIO(content.encode()))})
    assert answer.status_code == 422, answer.text[:300]
    text = json.dumps(answer.json())
    assert "deep.jsonl" in text and "line 2" in text and "history" in text and "levels deep" in text
    assert user_datasets(api) == []


def test_disk_full_upload_is_507_and_keeps_nothing(api, monkeypatch):
    def full_open(path, mode="r", *args, **kwargs):  # the kernel's own ENOSPC, at the upload's copy
        return open("/dev/full" if "w" in mode else path, mode, *args, **kwargs)

    monkeypatch.setattr(uploads, "open", full_open, raising=False)
    rows = "".join(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n" for i in range(50_000))
    answer = api.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(rows.encode()))})
    body = assert_error(answer, 507)
    assert "is full" in body["message"] and "free" in body["message"] and body.get("hint")
    assert user_datasets(api) == []
