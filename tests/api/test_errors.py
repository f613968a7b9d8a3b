"""One error shape for every 4xx, made by the exception handlers (backend/api/errors.py), and documented."""

from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse

from backend.api.main import API_PREFIX, create_app

SHAPE = {"message", "errors", "error_count"}


def _shape(resp) -> dict:
    body = resp.json()
    assert SHAPE <= set(body) <= SHAPE | {"hint"}, body
    assert body["error_count"] >= len(body["errors"]) and all(set(e) == {"loc", "msg"} for e in body["errors"])
    return body


def test_domain_errors_carry_status_message_loc_and_hint(api):
    body = _shape(missing := api.get(f"{API_PREFIX}/jobs/job_nope"))
    assert missing.status_code == 404 and body["message"] == "no job with id 'job_nope'"
    assert body["errors"] == [{"loc": ["path", "job_id"], "msg": "no job with id 'job_nope'"}]
    assert body["hint"] == "list the jobs with GET /api/v1/jobs"
    assert api.post(f"{API_PREFIX}/jobs/job_nope/cancel").status_code == 404
    assert _shape(api.get(f"{API_PREFIX}/presets/nope"))["errors"][0]["loc"] == ["path", "name"]


def test_request_validation_is_422_in_the_same_shape_without_echoing_the_input(api):
    huge = "x" * 2_000_000
    resp = api.post(f"{API_PREFIX}/jobs", json={"base_model": "m", "datasets": ["d"], "learning_rate": huge})
    body = _shape(resp)
    assert resp.status_code == 422 and body["errors"][0]["loc"] == ["body", "learning_rate"]
    assert body["message"].startswith("learning_rate: ") and len(resp.content) < 2_000
    submit = _shape(api.post(f"{API_PREFIX}/jobs", json={"base_model": "nope", "datasets": ["d"]}))
    assert submit["errors"][0]["loc"] == ["body", "base_model"] and "unknown base model" in submit["message"]


def test_wrong_method_is_405_and_unknown_path_404_even_with_the_ui_mounted_at_root(home):
    app = create_app(home, start_runner=False)
    app.mount("/", PlainTextResponse("the studio UI"))  # like gr.mount_gradio_app(api, blocks, path="/")
    with TestClient(app) as client:
        wrong = client.put(f"{API_PREFIX}/jobs/job_1")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, PATCH, DELETE"
        assert "PUT is not allowed" in _shape(wrong)["message"]
        assert client.delete(f"{API_PREFIX}/jobs").status_code == 405
        unknown = client.get(f"{API_PREFIX}/no-such-thing")
        assert unknown.status_code == 404 and "no API route" in _shape(unknown)["message"]
        assert client.get("/anything-else").text == "the studio UI"
        assert client.get(f"{API_PREFIX}/health").status_code == 200


def test_operations_document_their_error_statuses_with_the_error_body(api):
    spec = api.get(f"{API_PREFIX}/openapi.json").json()
    ops = spec["paths"]
    assert set(ops[f"{API_PREFIX}/jobs/{{job_id}}"]["get"]["responses"]) >= {"200", "404", "422"}
    assert set(ops[f"{API_PREFIX}/jobs/{{job_id}}/merge"]["post"]["responses"]) >= {"404", "409", "422", "503"}
    assert set(ops[f"{API_PREFIX}/datasets"]["post"]["responses"]) >= {"409", "413", "415", "422"}
    error_ref = ops[f"{API_PREFIX}/jobs/{{job_id}}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert error_ref["schema"]["$ref"].endswith("/ErrorBody")
    for path, methods in ops.items():
        for method, op in methods.items():
            for code, answer in op["responses"].items():
                if code.startswith("4"):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, code, ref)


def test_a_model_refusing_request_data_inside_a_route_is_422_not_500():
    from fastapi import FastAPI
    from pydantic import BaseModel

    from backend.api.errors import install_error_handlers

    class Settings(BaseModel):
        rank: int

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/settings")
    def make(body: dict) -> dict:
        return Settings.model_validate(body).model_dump()  # validated by hand, as services do

    with TestClient(app) as client:
        resp = client.post("/settings", json={"rank": "x" * 100_000})
    body = _shape(resp)
    assert resp.status_code == 422 and body["errors"][0]["loc"] == ["rank"] and len(resp.content) < 2_000
