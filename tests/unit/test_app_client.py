"""The UI's typed API client: list unwrapping, readable errors for every error shape, streamed downloads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.client import ApiError, TunesmithClient, parse_error


def _client(handler) -> TunesmithClient:
    return TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))


def test_lists_are_unwrapped_and_paths_are_under_the_base_url() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, dict(request.url.params)))
        if request.url.path.endswith("/metrics"):
            return httpx.Response(200, json={"data": [{"step": 3, "loss": 1.0}], "count": 1})
        return httpx.Response(200, json={"data": [{"id": "job_1", "state": "running"}], "count": 1})

    client = _client(handler)
    assert client.list_jobs() == [{"id": "job_1", "state": "running"}]
    assert client.job_metrics("job_1", after=2) == [{"step": 3, "loss": 1.0}]
    assert seen == [
        ("GET", "/api/v1/jobs", {}),
        ("GET", "/api/v1/jobs/job_1/metrics", {"after": "2"}),
    ]


def test_create_job_sends_config_and_name() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body == {"base_model": "m", "datasets": ["d"], "name": "try-1"}
        return httpx.Response(201, json={"id": "job_9", "state": "queued"})

    assert _client(handler).create_job({"base_model": "m", "datasets": ["d"]}, name="try-1")["id"] == "job_9"


def test_pydantic_422_names_the_field() -> None:
    response = httpx.Response(
        422,
        json={"message": "method.lora.rank: Input should be >= 1", "error_count": 1,
              "errors": [{"loc": ["body", "method", "lora", "rank"], "msg": "Input should be >= 1"}]},
    )
    err = parse_error(response)
    assert err.status_code == 422
    assert err.details == ["method.lora.rank: Input should be >= 1"]
    assert "method.lora.rank" in str(err) and "method.lora.rank" in err.as_markdown()


def test_structured_dataset_error_keeps_locations() -> None:
    response = httpx.Response(
        422,
        json={
            "message": "The file is not a dataset Tunesmith can read",
            "errors": [{"loc": ["line 3", "output"], "msg": "missing"}],
            "error_count": 1,
        },
    )
    err = parse_error(response)
    assert err.message == "The file is not a dataset Tunesmith can read"
    assert err.details == ["line 3 output: missing"]


def test_one_error_the_message_already_says_is_printed_once() -> None:
    """The Models tab printed "cannot reach the model hub at …" as the bold message and again as a bullet."""
    said = "cannot reach the model hub at https://huggingface.co: [Errno -2] Name or service not known"
    response = httpx.Response(503, json={"message": said, "hint": "check the network", "error_count": 1,
                                         "errors": [{"loc": ["body", "repo_id"], "msg": said}]})
    err = parse_error(response)
    assert err.as_markdown() == f"**{said} (hint: check the network)**"
    assert err.details == [f"repo_id: {said}"]  # kept for pages that lay problems out
    pydantic = parse_error(httpx.Response(422, json={"message": "method.lora.rank: Input should be >= 1",
                                                     "errors": [{"loc": ["body", "method", "lora", "rank"],
                                                                 "msg": "Input should be >= 1"}]}))
    assert pydantic.as_markdown().count("Input should be >= 1") == 1
    two = parse_error(httpx.Response(422, json={"message": "2 problems", "errors": [
        {"loc": ["a"], "msg": "x"}, {"loc": ["b"], "msg": "y"}]}))
    assert two.as_markdown() == "**2 problems**\n\n- a: x\n- b: y"


def test_plain_and_non_json_errors() -> None:
    one = {"message": "job already finished", "errors": [{"loc": [], "msg": "job already finished"}], "error_count": 1}
    assert str(parse_error(httpx.Response(409, json=one))) == "job already finished"
    hinted = parse_error(httpx.Response(422, json={**one, "message": "merge failed", "hint": "free memory"}))
    assert str(hinted) == "merge failed (hint: free memory)"
    assert "Bad Gateway" in str(parse_error(httpx.Response(502, text="")))
    assert str(parse_error(httpx.Response(500, text="boom"))) == "boom"


def test_unreachable_api_is_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ApiError, match="Cannot reach the Tunesmith API"):
        _client(handler).health()


def test_download_streams_to_file_and_errors_leave_nothing(tmp_path: Path) -> None:
    payload = b"PK\x03\x04" + b"x" * 3_000_000

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/adapter"):
            return httpx.Response(200, content=payload, headers={"content-type": "application/zip"})
        return httpx.Response(409, json={"message": "job job_1 has no merged output on disk", "errors": [],
                                         "error_count": 1})

    client = _client(handler)
    out = client.download_adapter("job_1", tmp_path / "a" / "adapter.zip")
    assert out.read_bytes() == payload
    with pytest.raises(ApiError, match="no merged output"):
        client.download_merged("job_1", tmp_path / "merged.zip")
    assert not list(tmp_path.glob("merged.zip*"))
