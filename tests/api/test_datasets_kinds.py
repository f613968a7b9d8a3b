"""Preference, KTO, tool-call and raw-text datasets through /api/v1/datasets; format/columns/tags overrides;
the built-in preference demo; LLaMA-Factory import/export of every kind."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import where

URL = "/api/v1/datasets"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/llamafactory"
SHARED_INFO = Path(__file__).resolve().parents[2].parent / "shared/data/llamafactory/dataset_info.json"


def upload(api, filename, content, **form):
    data = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in form.items()}
    return api.post(URL, files={"file": (filename, content, "application/octet-stream")}, data=data or None)


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def registry_state(api, home):
    return sorted(d["id"] for d in api.get(URL).json()["data"]), sorted(p.name for p in home.datasets_dir.iterdir())


@pytest.mark.parametrize("filename, content, fmt, kind, rows", [
    ("pairs.jsonl", jsonl(*[{"instruction": f"Q{i}", "chosen": "good", "rejected": "bad"} for i in range(3)]),
     "preference", "preference", 3),
    ("kto.json", (FIXTURES / "kto_en_demo.json").read_text(), "kto", "kto", 5),
    ("glaive.json", (FIXTURES / "glaive_toolcall_en_demo.json").read_text(), "sharegpt", "sft", 4),
    ("corpus.jsonl", jsonl({"text": "One document."}, {"text": "Another one."}), "text", "text", 2),
    ("corpus.csv", "text\nFirst.\nSecond.\nThird.\n", "text", "text", 3),
    ("notes.txt", "Para one\nstill one.\n\nPara two.\n", "text", "text", 2),
])
def test_every_kind_uploads_with_its_format_and_row_count(api, filename, content, fmt, kind, rows):
    resp = upload(api, filename, content)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["format"], body["kind"], body["num_rows"], body["mapping"]) == (fmt, kind, rows, {})
    assert api.get(f"{URL}/{body['id']}").status_code == 200  # preview of the new shape


def test_openai_tool_calls_upload_and_download(api):
    row = {"messages": [user("Weather in Rome?"),
                        {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
                            "name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
                        {"role": "tool", "content": "25 C"}, bot("25 °C.")],
           "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]}
    created = upload(api, "tools.jsonl", jsonl(row)).json()
    assert created["format"] == "messages"
    rows = [json.loads(line) for line in api.get(f"{URL}/{created['id']}/download").text.splitlines()]
    assert rows == [{"messages": [
        user("Weather in Rome?"),
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]},
        {"role": "tool", "content": "25 C"}, bot("25 °C.")], "tools": [{"name": "get_weather", "parameters": {}}]}]


@pytest.mark.parametrize("content, location, field, text", [
    (jsonl({"instruction": "Q", "chosen": "a", "rejected": "b"}, {"instruction": "Q", "chosen": "same",
                                                                    "rejected": "same"}),
     "line 2", "rejected", "are the same text"),
    (jsonl({"messages": [user("Q"), bot("A")], "label": True}, {"messages": [user("Q"), bot("A")], "label": "ok"}),
     "line 2", "label", "must be true"),
    (jsonl({"messages": [user("Q"), bot("A")], "tools": "[oops"}), "line 1", "tools", "not valid JSON"),
    (jsonl({"text": "fine"}, {"text": ""}), "line 2", "text", "the text is empty"),
])
def test_bad_rows_are_a_422_naming_record_and_field_and_leave_nothing(api, home, content, location, field, text):
    before = registry_state(api, home)
    resp = upload(api, "bad.jsonl", content)
    assert resp.status_code == 422
    problem = resp.json()["errors"][0]
    assert where(problem) == (location, field) and text in problem["msg"]
    assert registry_state(api, home) == before


def test_columns_and_format_override_detection_and_are_stored(api):
    resp = upload(api, "qa.jsonl", jsonl({"question": "Q", "answer": "A"}),
                  columns={"prompt": "question", "response": "answer"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["format"], body["mapping"]) == ("alpaca", {"columns": {"prompt": "question", "response": "answer"}})
    assert api.get(f"{URL}/{body['id']}").json()["preview"] == [{"messages": [user("Q"), bot("A")]}]
    listed = {d["id"]: d for d in api.get(URL).json()["data"]}
    assert listed[body["id"]]["mapping"] == body["mapping"]  # stored in the registry
    forced = upload(api, "docs.jsonl", jsonl({"text": "Doc.", "instruction": "x", "output": "y"}), format="text")
    assert (forced.json()["format"], forced.json()["mapping"]) == ("text", {"format": "text"})
    tagged = upload(api, "talk.jsonl", jsonl({"dialog": [{"who": "me", "said": "Q"}, {"who": "bot", "said": "A"}]}),
                    columns={"messages": "dialog"},
                    tags={"role_tag": "who", "content_tag": "said", "user_tag": "me", "assistant_tag": "bot"})
    assert tagged.status_code == 201 and api.get(f"{URL}/{tagged.json()['id']}").json()["preview"] == [
        {"messages": [user("Q"), bot("A")]}]


@pytest.mark.parametrize("form, location, field, text", [
    ({"columns": {"promt": "question"}}, "columns", "promt", "unknown key 'promt'"),
    ({"columns": {"prompt": "question", "response": "reply"}}, "columns", "reply",
     "names column 'reply' for 'response', but no record has it"),
    ({"columns": "{not json"}, "columns", None, "'columns' is not valid JSON"),
    ({"columns": "[1]"}, "columns", None, "not an object"),
    ({"tags": {"speaker_tag": "x"}}, "tags", "speaker_tag", "unknown key 'speaker_tag'"),
    ({"format": "dpo"}, "format", None, "unknown format 'dpo'"),
    ({"format": "alpaca"}, "record 1", "instruction", "required field 'instruction'"),
])
def test_bad_overrides_are_a_422_naming_them(api, home, form, location, field, text):
    before = registry_state(api, home)
    resp = upload(api, "qa.json", json.dumps([{"question": "Q", "answer": "A"}]), **form)
    assert resp.status_code == 422, resp.text
    problem = resp.json()["errors"][0]
    assert where(problem) == (location, field) and text in problem["msg"]
    assert registry_state(api, home) == before


def test_builtin_preference_demo_is_registered_as_preference(api):
    builtin = {d["name"]: d for d in api.get(URL).json()["data"] if d["builtin"]}["preference_demo"]
    assert (builtin["format"], builtin["kind"]) == ("preference", "preference") and 12 <= builtin["num_rows"] <= 16
    for row in api.get(f"{URL}/preference_demo").json()["preview"]:
        assert row["messages"][-1]["role"] == "assistant" and row["rejected"]["role"] == "assistant"
        assert row["messages"][-1]["content"] != row["rejected"]["content"]


def folder_zip(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


@pytest.mark.skipif(not SHARED_INFO.is_file(), reason="../shared/data/llamafactory not present")
def test_llamafactory_entries_of_every_kind_import_and_round_trip(api):
    # LLaMA-Factory's own dataset_info.json entries, with hand-written files for the demos ../shared lacks
    names = ("glaive_toolcall_en_demo", "kto_en_demo", "wiki_demo", "c4_demo")
    info = {name: json.loads(SHARED_INFO.read_text())[name] for name in names}
    files = {spec["file_name"]: (FIXTURES / spec["file_name"]).read_bytes() for spec in info.values()}
    resp = api.post(f"{URL}/import", files={"file": ("lf.zip", folder_zip(
        {"dataset_info.json": json.dumps(info), **files}), "application/zip")})
    assert resp.status_code == 200, resp.text
    got = {d["name"]: (d["format"], d["num_rows"]) for d in resp.json()["imported"]}
    assert got == {"glaive_toolcall_en_demo": ("sharegpt", 4), "kto_en_demo": ("kto", 5), "wiki_demo": ("text", 3),
                   "c4_demo": ("text", 2)} and resp.json()["skipped"] == []
    assert api.get(f"{URL}/glaive_toolcall_en_demo").json()["mapping"] == {"llamafactory": {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}}

    exported = zipfile.ZipFile(io.BytesIO(api.get(f"{URL}/export/llamafactory").content))
    entries = json.loads(exported.read("dataset_info.json"))
    assert entries["preference_demo"]["ranking"] is True
    assert entries["kto_en_demo"]["columns"] == {"messages": "messages", "kto_tag": "label"}
    assert entries["wiki_demo"] == {"file_name": "wiki_demo.json", "columns": {"prompt": "text"}}
    glaive = entries["glaive_toolcall_en_demo"]
    assert glaive["columns"]["tools"] == "tools" and glaive["tags"]["function_tag"] == "function_call"
    first = json.loads(exported.read("glaive_toolcall_en_demo.json"))[0]
    assert [t["role"] for t in first["messages"]] == ["user", "function_call", "observation", "assistant"]
    assert isinstance(first["tools"], str) and json.loads(first["tools"])[0]["name"] == "get_weather"

    registry = api.app_state.registry
    before = {d["name"]: (d["kind"], d["num_rows"], registry.get(d["id"]).sha256) for d in api.get(URL).json()["data"]}
    again = api.post(f"{URL}/import", files={"file": ("back.zip", api.get(f"{URL}/export/llamafactory").content,
                                                      "application/zip")}).json()
    assert again["skipped"] == []
    after = {d["source_filename"][:-len(".json")]: (d["kind"], d["num_rows"], registry.get(d["id"]).sha256)
             for d in again["imported"]}  # the built-ins (re-registered at each start) come back as copies
    after.update({r["name"]: (r["dataset"]["kind"], r["dataset"]["num_rows"], registry.get(r["dataset"]["id"]).sha256)
                  for r in again["reused"]})  # the user's datasets are the same rows: reused, not copied
    assert {r["name"] for r in again["reused"]} == set(names)
    assert after == before  # same kind, rows and normalized bytes for every dataset, built-ins included
