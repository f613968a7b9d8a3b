"""/api/v1/datasets through the real app factory (no training, no runner thread)."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.settings import Settings
from tests.api.conftest import where

SHARED = Path(__file__).resolve().parents[2] / "../shared/data/llamafactory"
URL = "/api/v1/datasets"
PUBLIC_FIELDS = {"id", "name", "format", "num_rows", "size_bytes", "created_at", "source_filename", "builtin"}
ROWS = [{"instruction": f"Spell {w}", "input": "", "output": "-".join(w)} for w in ("cat", "dog", "owl")]


def upload(api, filename, content, name=None):
    data = {"name": name} if name else None
    return api.post(URL, files={"file": (filename, content, "application/octet-stream")}, data=data)


def user_datasets(home: Settings) -> list[Path]:
    return [p for p in home.datasets_dir.iterdir()]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/llamafactory not present")
@pytest.mark.parametrize("filename", ["alpaca_en_demo.json", "identity.json"])
def test_upload_llamafactory_file(api, filename):
    expected = len(json.loads((SHARED / filename).read_text(encoding="utf-8")))
    with open(SHARED / filename, "rb") as fh:
        resp = upload(api, filename, fh)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert PUBLIC_FIELDS <= body.keys()
    assert (body["format"], body["num_rows"], body["source_filename"], body["builtin"]) == (
        "alpaca", expected, filename, False)
    detail = api.get(f"{URL}/{body['id']}").json()
    assert len(detail["preview"]) == 5 and detail["preview"][0]["messages"][0]["role"] == "user"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/llamafactory not present")
def test_upload_llamafactory_dpo_file_registers_as_preference(api):
    with open(SHARED / "dpo_en_demo.json", "rb") as fh:
        resp = upload(api, "dpo_en_demo.json", fh)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["format"], resp.json()["num_rows"]) == ("preference", 300)
    row = api.get(f"{URL}/{resp.json()['id']}").json()["preview"][0]
    assert row["messages"][-1]["role"] == "assistant" and row["rejected"]["role"] == "assistant"


def test_list_get_preview_rename_delete(api):
    baseline = api.get(URL).json()["count"]  # built-in demo datasets are registered at start
    created = upload(api, "spell.json", json.dumps(ROWS), name="spelling").json()
    listing = api.get(URL).json()
    assert listing["count"] == baseline + 1 == len(listing["data"])
    assert any(d["id"] == created["id"] and d["name"] == "spelling" for d in listing["data"])

    detail = api.get(f"{URL}/{created['id']}").json()
    assert detail["num_rows"] == 3 and detail["preview"][2] == {"messages": [
        {"role": "user", "content": "Spell owl"}, {"role": "assistant", "content": "o-w-l"}]}
    assert api.get(f"{URL}/spelling").json()["id"] == created["id"]  # names work too

    assert api.patch(f"{URL}/{created['id']}", json={"name": "letters"}).json()["name"] == "letters"
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert api.delete(f"{URL}/{created['id']}").status_code == 404
    assert api.get(URL).json()["count"] == baseline


def test_builtins_are_listed_and_read_only(api):
    builtins = {d["name"]: d for d in api.get(URL).json()["data"] if d["builtin"]}
    assert {"identity", "chat_demo"} <= builtins.keys()
    preview = api.get(f"{URL}/identity").json()["preview"]
    assert "Tunesmith" in json.dumps(preview) and "{{name}}" not in json.dumps(preview)
    assert api.delete(f"{URL}/{builtins['identity']['id']}").status_code == 409


def test_malformed_jsonl_names_the_line_and_leaves_nothing(api, home):
    before = sorted(user_datasets(home))
    good = json.dumps(ROWS[0])
    resp = upload(api, "broken.jsonl", f'{good}\n{good}\n{{"instruction": "x" "output": "y"}}\n')
    assert resp.status_code == 422
    detail = resp.json()
    assert detail["error_count"] == 1 and detail["errors"][0]["loc"][0] == "line 3"
    assert "line 3: not valid JSON: Expecting ',' delimiter (column 21)" in detail["message"]
    assert "Each line of a JSONL file must be one JSON object" in detail["message"]
    assert sorted(user_datasets(home)) == before
    assert not any(d["source_filename"] == "broken.jsonl" for d in api.get(URL).json()["data"])


def test_malformed_json_array_names_the_record(api):
    resp = upload(api, "broken.json", '[{"instruction": "a", "output": "b"}, {"instruction": "a",, "output": "b"}]')
    detail = resp.json()
    assert resp.status_code == 422 and detail["errors"][0]["loc"][0] == "record 2"
    assert "record 2: not valid JSON at line 1, column 59: Expecting property name" in detail["message"]


def test_wrong_fields_name_the_record_and_field(api, home):
    before = sorted(user_datasets(home))
    rows = [ROWS[0], {"instruction": "a", "response": "b"}, {"instruction": "a", "output": ["b"]}]
    resp = upload(api, "fields.json", json.dumps(rows))
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert [where(e) for e in errors] == [("record 2", "output"), ("record 3", "output")]
    assert "required field 'output'" in errors[0]["msg"] and "got array" in errors[1]["msg"]
    assert sorted(user_datasets(home)) == before


def test_unknown_format_says_what_was_found(api):
    resp = upload(api, "qa.jsonl", json.dumps({"question": "q", "answer": "a"}) + "\n")
    assert resp.status_code == 422 and "has keys [answer, question]" in resp.json()["message"]


def test_status_codes_for_extension_size_and_name(api, home, tmp_path):
    assert upload(api, "notes.docx", "hello").status_code == 415
    assert upload(api, "a.json", json.dumps(ROWS), name="taken").status_code == 201
    clash = upload(api, "b.json", json.dumps(ROWS), name="taken")
    assert clash.status_code == 409 and "already exists" in clash.json()["message"]
    assert upload(api, "c.json", json.dumps(ROWS), name="bad/name").status_code == 422

    small = create_app(Settings(home=tmp_path / "small", max_upload_bytes=64), start_runner=False)
    with TestClient(small) as client:
        resp = upload(client, "big.json", json.dumps(ROWS * 5))
        assert resp.status_code == 413 and "limit" in resp.json()["message"]
        assert upload(client, "ok.json", json.dumps(ROWS[:1])).status_code == 201


def test_delete_refused_while_a_job_uses_the_dataset(api):
    created = upload(api, "used.json", json.dumps(ROWS)).json()

    class BusyJobs:
        def datasets_in_use(self):
            return {created["id"]}

    real_jobs = api.app_state.jobs
    api.app_state.jobs = BusyJobs()
    try:
        resp = api.delete(f"{URL}/{created['id']}")
        assert resp.status_code == 409 and "queued or running job" in resp.json()["message"]
    finally:
        api.app_state.jobs = real_jobs
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
