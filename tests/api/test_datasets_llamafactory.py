"""LLaMA-Factory import/export, zip uploads, download and dedup through the real app factory."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.datasets.llamafactory import REMOTE_REASON
from backend.settings import Settings

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/llamafactory"
URL = "/api/v1/datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/llamafactory not present")
ROWS = [{"instruction": f"Spell {w}", "input": "", "output": "-".join(w)} for w in ("cat", "dog", "owl")]


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


def shared_folder_zip(prefix: str = "data/") -> bytes:
    names = ["dataset_info.json", "alpaca_en_demo.json", "identity.json", "dpo_en_demo.json"]
    return zip_bytes({prefix + n: (SHARED / n).read_bytes() for n in names})


def import_zip(api, content: bytes, filename="data.zip"):
    return api.post(f"{URL}/import", files={"file": (filename, content, "application/zip")})


def skipped(body) -> dict[str, str]:
    return {s["name"]: s["reason"] for s in body["skipped"]}


def rows_and_sha(api, datasets, key="name") -> dict[str, tuple[int, str]]:
    registry = api.app_state.registry
    return {d[key]: (d["num_rows"], registry.get(d["id"]).sha256) for d in datasets}


def check_shared_import(body):
    # the built-in demo dataset 'identity' holds that name, so the import takes 'identity-2'
    rows = {d["name"]: (d["num_rows"], d["format"]) for d in body["imported"]}
    assert rows == {"alpaca_en_demo": (999, "alpaca"), "identity-2": (91, "alpaca"), "dpo_en_demo": (300, "preference")}
    reasons = skipped(body)
    assert reasons["alpaca_en"] == REMOTE_REASON and reasons["dpo_mix_en"] == REMOTE_REASON
    assert reasons["alpaca_zh_demo"] == "file 'alpaca_zh_demo.json' is not in the folder"
    absent = {"kto_en_demo": "kto_en_demo.json", "glaive_toolcall_en_demo": "glaive_toolcall_en_demo.json",
              "c4_demo": "c4_demo.jsonl", "wiki_demo": "wiki_demo.txt"}  # kinds we read, but the files are not here
    assert {name: reasons[name] for name in absent} == {
        name: f"file '{file}' is not in the folder" for name, file in absent.items()}
    assert "multimodal" in reasons["mllm_demo"]
    assert len(body["imported"]) + len(body["skipped"]) == len(json.loads((SHARED / "dataset_info.json").read_text()))


@needs_shared
def test_import_server_folder_inside_the_root(api, monkeypatch):
    monkeypatch.setenv("TUNESMITH_IMPORT_ROOT", str(SHARED.parent))
    resp = api.post(f"{URL}/import", json={"path": str(SHARED)})
    assert resp.status_code == 200, resp.text
    check_shared_import(resp.json())
    first = api.get(f"{URL}/alpaca_en_demo").json()["preview"][0]["messages"]
    record = json.loads((SHARED / "alpaca_en_demo.json").read_text())[0]
    assert first[-1] == {"role": "assistant", "content": record["output"]}
    pair = api.get(f"{URL}/dpo_en_demo").json()["preview"][0]
    record = json.loads((SHARED / "dpo_en_demo.json").read_text())[0]
    assert pair == {"messages": [{"role": "user", "content": record["conversations"][0]["value"]},
                                 {"role": "assistant", "content": record["chosen"]["value"]}],
                    "rejected": {"role": "assistant", "content": record["rejected"]["value"]}}
    # relative to the root works too, and a second import takes name-2
    again = api.post(f"{URL}/import", json={"path": SHARED.name})
    assert again.status_code == 200 and {d["name"] for d in again.json()["imported"]} == {
        "alpaca_en_demo-2", "identity-3", "dpo_en_demo-2"}


def test_import_path_outside_the_root_is_forbidden(api, home, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "dataset_info.json").write_text("{}")
    for path in (str(tmp_path / "elsewhere"), "../../elsewhere", "/etc"):
        resp = api.post(f"{URL}/import", json={"path": path})
        assert resp.status_code == 403 and str(home.home / "import") in resp.json()["message"], path
    (home.home / "import").mkdir()
    assert api.post(f"{URL}/import", json={"path": "missing"}).status_code == 404
    assert api.post(f"{URL}/import", json={"folder": "x"}).status_code == 422


@needs_shared
@pytest.mark.parametrize("prefix", ["", "LLaMA-Factory-data/"])
def test_import_zip_of_the_folder(api, prefix):
    resp = import_zip(api, shared_folder_zip(prefix))
    assert resp.status_code == 200, resp.text
    check_shared_import(resp.json())


def test_import_honours_columns_and_tags(api):
    info = {
        "renamed_alpaca": {"file_name": "a.jsonl", "columns": {"prompt": "q", "query": "ctx", "response": "a",
                                                                "system": "sys", "history": "past"}},
        "openai_style": {"file_name": "b.json", "formatting": "sharegpt", "columns": {"messages": "msgs"},
                         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                  "assistant_tag": "assistant", "system_tag": "system"}},
        "default_sharegpt": {"file_name": "c.json", "formatting": "sharegpt"},
        "tools": {"file_name": "d.json", "formatting": "sharegpt", "columns": {"messages": "conversations",
                                                                               "tools": "tools"}},
        "broken": {"file_name": "e.json"},
        "escape": {"file_name": "../outside.json"},
        "hub": {"hf_hub_url": "org/data", "file_name": "ignored.json"},
    }
    turns = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    content = {
        "dataset_info.json": json.dumps(info),
        "a.jsonl": json.dumps({"q": "Add", "ctx": "2+2", "a": "4", "sys": "Math.", "past": [["hi", "hello"]]}) + "\n",
        "b.json": json.dumps([{"msgs": turns}]),
        "c.json": json.dumps([{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
                               "system": "Be kind."}]),
        "d.json": json.dumps([{"conversations": [{"from": "human", "value": "Q"},
                                                 {"from": "function_call", "value": '{"name": "f", "arguments": {}}'},
                                                 {"from": "observation", "value": "{}"},
                                                 {"from": "gpt", "value": "A"}], "tools": '[{"name": "f"}]'}]),
        "e.json": json.dumps([{"instruction": "no answer"}]),
    }
    resp = import_zip(api, zip_bytes(content))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {d["name"]: d["format"] for d in body["imported"]} == {
        "renamed_alpaca": "alpaca", "openai_style": "sharegpt", "default_sharegpt": "sharegpt", "tools": "sharegpt"}
    preview = lambda name: api.get(f"{URL}/{name}").json()["preview"][0]["messages"]  # noqa: E731
    assert preview("renamed_alpaca") == [
        {"role": "system", "content": "Math."}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "Add\n2+2"},
        {"role": "assistant", "content": "4"}]
    assert preview("openai_style") == turns
    assert preview("default_sharegpt")[0] == {"role": "system", "content": "Be kind."}
    reasons = skipped(body)
    assert api.get(f"{URL}/tools").json()["preview"][0] == {"messages": [
        {"role": "user", "content": "Q"}, {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]},
        {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "A"}], "tools": [{"name": "f"}]}
    assert "required field 'output'" in reasons["broken"]
    assert "outside the data folder" in reasons["escape"] and reasons["hub"] == REMOTE_REASON


def test_import_zip_without_dataset_info_or_unsafe_is_refused(api, home):
    resp = import_zip(api, zip_bytes({"a/x.json": "[]", "b/y.json": "[]"}))
    assert resp.status_code == 422 and "dataset_info.json" in resp.json()["message"]
    resp = import_zip(api, zip_bytes({"dataset_info.json": "{}", "../evil.json": "[]"}))
    assert resp.status_code == 422 and "unsafe path" in resp.json()["message"]
    assert import_zip(api, b"not a zip").status_code == 422
    assert not [p for p in home.datasets_dir.iterdir() if p.name.startswith(".")]


@needs_shared
def test_export_round_trips_through_import(api):
    assert import_zip(api, shared_folder_zip()).status_code == 200
    upload = api.post(URL, files={"file": ("spell words.json", json.dumps(ROWS))})
    assert upload.status_code == 201
    resp = api.get(f"{URL}/export/llamafactory")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    info = json.loads(archive.read("dataset_info.json"))
    registered = {d["name"]: d for d in api.get(URL).json()["data"]}
    assert info.keys() == registered.keys()
    assert info["identity"] == {
        "file_name": "identity.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}
    assert len(json.loads(archive.read("alpaca_en_demo.json"))) == 999

    again = import_zip(api, resp.content).json()
    assert again["skipped"] == [] and len(again["imported"]) == len(registered)
    before = rows_and_sha(api, registered.values())  # built-ins, the LLaMA-Factory demos and the upload
    after = rows_and_sha(api, again["imported"], key="source_filename")
    assert {name + ".json": value for name, value in before.items()} == after


def test_zip_with_one_data_file_uploads_as_that_file(api):
    resp = api.post(URL, files={"file": ("pack.zip", zip_bytes({"folder/words.jsonl": "\n".join(
        json.dumps(r) for r in ROWS), "__MACOSX/._words.jsonl": "junk", ".DS_Store": "junk"}))})
    assert resp.status_code == 201, resp.text
    assert (resp.json()["name"], resp.json()["num_rows"], resp.json()["source_filename"]) == (
        "words", 3, "words.jsonl")


@pytest.mark.parametrize("files, text", [
    ({"a.json": "[]", "b.csv": "x"}, "nothing was registered, 2 of its data files are rejected (a.json, b.csv)"),
    ({"readme.md": "x"}, "found 0"),
    ({"/abs.json": "[]"}, "unsafe path"),
    ({"x/../../up.json": "[]"}, "unsafe path"),
    ({"dataset_info.json": "{}", "a.json": "[]"}, "/api/v1/datasets/import"),
])
def test_bad_zip_uploads_are_refused(api, home, files, text):
    resp = api.post(URL, files={"file": ("pack.zip", zip_bytes(files))})
    assert resp.status_code == 422 and text in resp.json()["message"]
    assert not [p for p in home.datasets_dir.iterdir() if p.name.startswith(".")]


def test_zip_bomb_is_stopped_at_the_uncompressed_limit(tmp_path):
    small = create_app(Settings(home=tmp_path / "small", max_upload_bytes=50_000), start_runner=False)
    bomb = zip_bytes({"big.jsonl": (json.dumps(ROWS[0]) + "\n") * 20_000})
    assert len(bomb) < 50_000
    with TestClient(small) as client:
        resp = client.post(URL, files={"file": ("bomb.zip", bomb)})
        assert resp.status_code == 413 and "unpacks to more than" in resp.json()["message"]
        assert client.post(f"{URL}/import", files={"file": ("bomb.zip", zip_bytes(
            {"dataset_info.json": "{}", "big.jsonl": (json.dumps(ROWS[0]) + "\n") * 20_000}))}).status_code == 413


def test_download_returns_the_normalized_jsonl(api):
    created = api.post(URL, files={"file": ("spell.json", json.dumps(ROWS))}).json()
    resp = api.get(f"{URL}/{created['id']}/download")
    assert resp.status_code == 200 and "spell.jsonl" in resp.headers["content-disposition"]
    rows = [json.loads(line) for line in resp.text.splitlines()]
    assert rows[0] == {"messages": [{"role": "user", "content": "Spell cat"}, {"role": "assistant", "content": "c-a-t"}]}
    assert len(rows) == 3 and api.get(f"{URL}/spell/download").status_code == 200
    assert api.get(f"{URL}/ds_0000000000/download").status_code == 404


def test_dedup_drops_exact_duplicates_and_says_how_many(api):
    rows = ROWS + [ROWS[0], ROWS[1], ROWS[0]]
    kept = api.post(f"{URL}?dedup=true", files={"file": ("d.json", json.dumps(rows))}).json()
    assert (kept["num_rows"], kept["duplicates_dropped"]) == (3, 3)
    assert any("3 exact duplicate row(s) were dropped" in w["message"] for w in kept["warnings"])
    plain = api.post(URL, files={"file": ("p.json", json.dumps(rows))}).json()
    assert (plain["num_rows"], plain["duplicates_dropped"], plain["warning_count"]) == (6, 0, 3)
