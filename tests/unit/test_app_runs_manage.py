"""The Runs page's housekeeping handlers against a transport that answers as the API does."""

from __future__ import annotations

import json

import httpx

from app.client import TunesmithClient
from app.i18n.switch import CANCELLED
from app.pages.runs import refresh_jobs
from app.pages.runs_manage import delete_run, filter_params, load_info, parse_tags, save_info


def _client(seen: list) -> TunesmithClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.url.query.decode(),
                     json.loads(request.content) if request.content else None))
        if request.method == "DELETE" and request.url.path.endswith("/job_run"):
            return httpx.Response(409, json={"message": "job job_run is running; cancel it first, then delete it",
                                             "errors": [], "error_count": 1})
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.method == "PATCH":
            body = json.loads(request.content)
            return httpx.Response(200, json={"id": "job_a", "name": body.get("name", "old"), "tags": body["tags"]})
        if request.url.path.endswith("/jobs"):
            return httpx.Response(200, json={"data": [], "count": 0})
        return httpx.Response(200, json={"id": "job_a", "name": "first", "tags": ["a", "b"], "notes": "n"})

    return TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))


def test_fields_load_save_and_delete() -> None:
    seen: list = []
    client = _client(seen)
    assert parse_tags(" baseline, lr sweep,, ") == ["baseline", "lr sweep"]
    assert load_info(client, "en", "job_a") == ("first", "a, b", "n")
    assert save_info(client, "en", "job_a", " v2 ", "x, y", "") == "Saved: v2."
    assert seen[-1] == ("PATCH", "/api/v1/jobs/job_a", "", {"name": "v2", "tags": ["x", "y"], "notes": ""})
    assert delete_run(client, "en", "job_a") == "Run job_a and its folder were deleted."
    assert "cancel it first" in delete_run(client, "en", "job_run")
    count = len(seen)
    assert delete_run(client, "en", CANCELLED) == "" and len(seen) == count  # the user said no: nothing sent
    assert delete_run(client, "zh", None) == "⚠ 请先选择一个运行。"
    client.list_jobs(tag="baseline", query="v2")
    assert seen[-1][:3] == ("GET", "/api/v1/jobs", "tag=baseline&q=v2")


def test_filter_box_reaches_the_api() -> None:
    assert filter_params("tag:baseline lr  sweep") == {"tag": "baseline", "query": "lr sweep"}
    assert filter_params("  ") == {} and filter_params("tag:") == {"query": "tag:"}
    seen: list = []
    refresh_jobs(_client(seen), "en", None, "", "tag:x numbers")
    assert seen[-1][:3] == ("GET", "/api/v1/jobs", "tag=x&q=numbers")
