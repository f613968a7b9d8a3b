"""The security guard in front of the API and the UI: token, Host allow-list, Origin check, body caps.

In-process (Starlette's TestClient, real app, real SQLite); the CLI's refusal and a real served studio are in
tests/api/test_security_server.py."""

import errno
import io
import json
import re
import sqlite3

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.api.security import SecurityPolicy, StudioGuard, host_name, origin_allowed
from backend.settings import Settings

TOKEN = "t0ken-for-tests-0123456789abcdef"
ROWS = "\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(3)).encode()


def make_client(tmp_path, **overrides) -> TestClient:
    settings = Settings(home=tmp_path / "home", **overrides)
    return TestClient(create_app(settings, start_runner=False, register_builtins=False))


@pytest.fixture
def locked(tmp_path):
    with make_client(tmp_path, token=TOKEN) as client:
        yield client


@pytest.fixture
def open_studio(tmp_path):
    with make_client(tmp_path, allowed_hosts=("studio.example.com",), max_json_bytes=1000) as client:
        yield client


def bearer(token=TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_error_shape(response, status, words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"message", "errors", "error_count"} and body["error_count"] == len(body["errors"]) >= 1
    for word in words:
        assert word in body["message"] + body.get("hint", "")


# -- token -----------------------------------------------------------------------------------------


def test_token_guards_every_api_route_but_health(locked):
    assert locked.get("/api/v1/health").status_code == 200
    for path in ("/api/v1/datasets", "/api/v1/jobs", "/api/v1/models", "/openapi.json", "/api/v1/openapi.json",
                 "/v1/models", "/v1/chat/completions", "/api/v1/no-such-route"):
        response = locked.get(path)
        assert_error_shape(response, 401, ["access token", "Bearer"])
        assert response.headers["www-authenticate"] == "Bearer"
    assert locked.get("/api/v1/jobs", headers=bearer()).json()["count"] == 0
    assert locked.get("/api/v1/jobs", headers=bearer("wrong" + TOKEN)).status_code == 401
    assert locked.get("/api/v1/jobs", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    assert locked.get(f"/api/v1/jobs?token={TOKEN}").status_code == 401  # never from the URL


def test_writes_without_token_create_nothing(locked):
    response = locked.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(ROWS))}, data={"name": "x"})
    assert response.status_code == 401
    assert locked.get("/api/v1/datasets", headers=bearer()).json()["count"] == 0
    created = locked.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(ROWS))}, data={"name": "x"},
                          headers=bearer())
    assert created.status_code == 201, created.text


def test_ui_login_sets_an_httponly_cookie_that_opens_ui_and_api(locked):
    page = locked.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    form = locked.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text and TOKEN not in form.text
    wrong = locked.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not the access token" in wrong.text and "set-cookie" not in wrong.headers
    ok = locked.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert locked.get("/api/v1/jobs").status_code == 200  # the client now carries the cookie
    out = locked.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    locked.cookies.clear()
    assert locked.get("/api/v1/jobs").status_code == 401


def test_no_token_means_open_on_loopback(open_studio):
    assert open_studio.get("/api/v1/jobs").status_code == 200
    assert open_studio.get("/login", follow_redirects=False).status_code == 303  # nothing to sign in to


# -- Host allow-list (DNS rebinding) ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:7860", "127.0.0.1.attacker.example", ""])
def test_foreign_host_is_refused(open_studio, host):
    response = open_studio.get("/api/v1/datasets", headers={"host": host})
    assert_error_shape(response, 400, ["host name", "TUNESMITH_ALLOWED_HOSTS"])
    assert open_studio.get("/", headers={"host": host}).status_code == 400


@pytest.mark.parametrize("host", ["localhost:7860", "127.0.0.1", "[::1]:7860", "studio.example.com",
                                  "STUDIO.example.com:443"])
def test_loopback_and_configured_hosts_pass(open_studio, host):
    assert open_studio.get("/api/v1/datasets", headers={"host": host}).status_code == 200


# -- Origin (CSRF) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},
    {"origin": "null"},
    {"origin": "http://testserver.evil.example"},
    {"referer": "http://evil.example/page.html"},
    {"sec-fetch-site": "cross-site"},
    {"origin": "http://localhost:9999"},  # another local web app is another site too
])
def test_cross_site_writes_are_refused_and_create_nothing(open_studio, headers):
    upload = open_studio.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(ROWS))},
                              data={"name": "evil"}, headers=headers)
    assert_error_shape(upload, 403, ["another site", "nothing was done"])
    empty = open_studio.post("/api/v1/datasets/identity", headers=headers,
                             content=b'{"name": "Evil", "author": "x"}')
    assert empty.status_code == 403
    text_plain = open_studio.post("/api/v1/jobs", headers={**headers, "content-type": "text/plain"},
                                  content=b'{"base_model": "x", "datasets": ["y"]}')
    assert text_plain.status_code == 403
    assert open_studio.delete("/api/v1/datasets/whatever", headers=headers).status_code == 403
    for action in ("cancel", "stop", "resume", "merge"):  # body-less POSTs need no CORS preflight
        assert open_studio.post(f"/api/v1/jobs/job_x/{action}", headers=headers).status_code == 403
    assert open_studio.get("/api/v1/datasets").json()["count"] == 0
    assert open_studio.get("/api/v1/datasets", headers=headers).status_code == 200  # reads are not writes


@pytest.mark.parametrize("origin", ["http://testserver", "https://studio.example.com", "http://studio.example.com:8443"])
def test_same_site_writes_pass(open_studio, origin):
    upload = open_studio.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(ROWS))},
                              data={"name": "ok"}, headers={"origin": origin, "sec-fetch-site": "same-origin"})
    assert upload.status_code == 201, upload.text


# -- body caps ---------------------------------------------------------------------------------------


def test_json_body_over_the_cap_is_413_before_reading(open_studio):
    big = b'{"base_model": "' + b"x" * 5000 + b'"}'
    response = open_studio.post("/api/v1/jobs/preview", content=big, headers={"content-type": "application/json"})
    assert_error_shape(response, 413, ["TUNESMITH_MAX_JSON_BYTES"])
    assert len(response.content) < 1000


def test_chunked_json_body_over_the_cap_is_413(open_studio):
    def chunks():
        yield b'{"base_model": "'
        for _ in range(10):
            yield b"x" * 400
        yield b'"}'

    response = open_studio.post("/api/v1/jobs/preview", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "TUNESMITH_MAX_JSON_BYTES" in json.dumps(response.json())


def test_small_json_body_passes(open_studio):
    response = open_studio.post("/api/v1/datasets/identity", json={"name": "Ada", "author": "Lab"})
    assert response.status_code != 413


# -- the pure parts ----------------------------------------------------------------------------------


def test_host_name_strips_ports_and_brackets():
    assert host_name("LocalHost:7860") == "localhost"
    assert host_name("[::1]:7860") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("example.com") == "example.com"


def test_origin_allowed_is_same_host_or_configured_name():
    policy = SecurityPolicy(token=None, public_hosts=frozenset({"studio.example.com"}), max_json_bytes=1,
                            max_upload_bytes=1)
    assert origin_allowed("http://127.0.0.1:7860", "127.0.0.1:7860", policy)
    assert not origin_allowed("http://127.0.0.1:7861", "127.0.0.1:7860", policy)
    assert origin_allowed("https://studio.example.com", "127.0.0.1:7860", policy)
    assert not origin_allowed("ftp://studio.example.com", "127.0.0.1:7860", policy)
    assert not origin_allowed("null", "127.0.0.1:7860", policy)
    assert not origin_allowed("http://[bad", "127.0.0.1:7860", policy)


def test_openapi_json_at_the_root_is_the_apis(open_studio):
    root = open_studio.get("/openapi.json").json()
    assert root["info"]["title"] == "Tunesmith API" and "/api/v1/jobs" in root["paths"]
    assert open_studio.get("/api/v1/openapi.json").json() == root


def test_openapi_documents_the_guards_answers(open_studio):
    paths = open_studio.get("/openapi.json").json()["paths"]
    upload = paths["/api/v1/datasets"]["post"]["responses"]
    assert {"400", "401", "403", "413", "503"} <= set(upload)
    listing = paths["/api/v1/datasets"]["get"]["responses"]
    assert {"400", "401"} <= set(listing) and "403" not in listing and "413" not in listing
    assert "401" not in paths["/api/v1/health"]["get"]["responses"]
    assert "503" not in paths["/api/v1/jobs/preview"]["post"]["responses"]


# -- file-system failures a route did not handle ------------------------------------------------------


def guarded_failure(exc: BaseException):
    """The guard around a stand-in app whose route fails with ``exc`` (a real route would need a real broken
    disk for each case; the guard's translation is what is tested here)."""
    async def failing_app(scope, receive, send):
        raise exc

    policy = SecurityPolicy(token=None, public_hosts=frozenset(), max_json_bytes=1000, max_upload_bytes=1000)
    return TestClient(StudioGuard(failing_app, policy), base_url="http://127.0.0.1", raise_server_exceptions=True)


@pytest.mark.parametrize("exc,status,words", [
    (OSError(errno.ENOSPC, "No space left on device", "/home/x/runs/a"), 507, "is full"),
    (sqlite3.OperationalError("database or disk is full"), 507, "is full"),
    (OSError(errno.EROFS, "Read-only file system", "/home/x/tunesmith.db"), 503, "could not write"),
    (PermissionError(errno.EACCES, "Permission denied", "/home/x/datasets"), 503, "could not write"),
])
def test_disk_failures_in_a_route_are_507_or_503_never_500(exc, status, words):
    answer = guarded_failure(exc).post("/api/v1/datasets/identity", json={"name": "x"})
    assert_error_shape(answer, status, [words])


def test_other_errors_stay_errors():
    with pytest.raises(OSError):
        guarded_failure(OSError(errno.EIO, "I/O error")).get("/api/v1/jobs")


# -- behind a reverse proxy --------------------------------------------------------------------------


def test_root_path_prefixes_the_login_redirect_and_the_cookie(tmp_path):
    app = create_app(Settings(home=tmp_path / "home", token=TOKEN), start_runner=False, register_builtins=False)
    with TestClient(app, root_path="/studio") as client:
        page = client.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/studio/login"
        ok = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert ok.headers["location"] == "/studio/" and "Path=/studio;" in ok.headers["set-cookie"]
        assert client.get("/api/v1/jobs", headers=bearer()).status_code == 200


def test_every_documented_operation_but_health_needs_the_token(locked):
    spec = locked.get("/openapi.json", headers=bearer()).json()
    checked = 0
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            answer = locked.request(method.upper(), concrete)
            expected = 200 if path == "/api/v1/health" else 401
            assert answer.status_code == expected, f"{method.upper()} {concrete} -> {answer.status_code}"
            checked += 1
    assert checked > 30
