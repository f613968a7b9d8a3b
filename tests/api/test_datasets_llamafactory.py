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
    # relative to the root works too, and a second import copies nothing: the same rows are registered already
    again = api.post(f"{URL}/import", json={"path": SHARED.name})
    assert again.status_code == 200 and again.json()["imported"] == []
    assert {r["name"]: r["dataset"]["name"] for r in again.json()["reused"]} == {
        "alpaca_en_demo": "alpaca_en_demo", "identity": "identity-2", "dpo_en_demo": "dpo_en_demo"}


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
    assert again["skipped"] == [] and len(again["imported"]) + len(again["reused"]) == len(registered)
    # the user's datasets come back as themselves (same rows: reused); built-ins, re-registered at each start,
    # are imported as copies
    assert {r["name"] for r in again["reused"]} == {n for n, d in registered.items() if not d["builtin"]}
    assert all(r["dataset"]["name"] == r["name"] for r in again["reused"])
    before = rows_and_sha(api, registered.values())  # built-ins, the LLaMA-Factory demos and the upload
    after = rows_and_sha(api, again["imported"], key="source_filename")
    after.update({r["name"] + ".json": rows_and_sha(api, [r["dataset"]])[r["name"]] for r in again["reused"]})
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


# ---- issue 12 group 8: no '-2' copies of identical files, skip invalid rows, placeholders named --------------
def test_an_identical_file_is_reused_not_copied_again(api):
    info = {"lf_spell": {"file_name": "spell.json"}, "lf_same": {"file_name": "spell.json"}}
    content = zip_bytes({"dataset_info.json": json.dumps(info), "spell.json": json.dumps(ROWS)})
    first = import_zip(api, content).json()
    assert [d["name"] for d in first["imported"]] == ["lf_spell"]
    assert [(r["name"], r["dataset"]["name"]) for r in first["reused"]] == [("lf_same", "lf_spell")]
    again = import_zip(api, content).json()
    assert again["imported"] == [] and {r["dataset"]["id"] for r in again["reused"]} == {first["imported"][0]["id"]}
    names = [d["name"] for d in api.get(URL).json()["data"]]
    assert names.count("lf_spell") == 1 and not any(n.startswith("lf_spell-") or n.startswith("lf_same") for n in names)
    changed = zip_bytes({"dataset_info.json": json.dumps({"lf_spell": {"file_name": "spell.json"}}),
                         "spell.json": json.dumps(ROWS[:2])})
    assert [d["name"] for d in import_zip(api, changed).json()["imported"]] == ["lf_spell-2"]  # other rows: new


def test_skip_invalid_imports_the_good_records_and_names_the_bad_ones(api):
    bad_rows = [ROWS[0], {"instruction": "", "input": "", "output": "x"}, ROWS[1], {"instruction": 3, "output": "y"}]
    content = zip_bytes({"dataset_info.json": json.dumps({"lf_mixed": {"file_name": "mixed.json"}}),
                         "mixed.json": json.dumps(bad_rows)})
    refused = import_zip(api, content).json()
    assert refused["imported"] == [] and "record 2" in skipped(refused)["lf_mixed"]
    (entry,) = refused["skipped"]  # every problem comes with the skipped entry, located
    assert [e["location"] for e in entry["errors"]] == ["record 2", "record 4"] and entry["error_count"] == 2
    resp = api.post(f"{URL}/import?skip_invalid=true", files={"file": ("d.zip", content, "application/zip")})
    assert resp.status_code == 200, resp.text
    (dataset,) = resp.json()["imported"]
    assert (dataset["name"], dataset["num_rows"]) == ("lf_mixed", 2)
    warnings = [(w["location"], w["message"]) for w in dataset["warnings"]]
    assert warnings[0] == ("file", "2 invalid record(s) skipped (skip invalid rows); the first 2 are listed with "
                                   "their line or record number.")
    assert [loc for loc, msg in warnings[1:3]] == ["record 2", "record 4"]
    assert all(msg.startswith("skipped: ") for _, msg in warnings[1:3])


def test_placeholders_in_an_entry_are_reported_by_name(api):
    rows = [{"instruction": "Who are you?", "input": "", "output": "I am {{name}}, made by {{author}}."}]
    content = zip_bytes({"dataset_info.json": json.dumps({"lf_who": {"file_name": "who.json"}}),
                         "who.json": json.dumps(rows)})
    (dataset,) = import_zip(api, content).json()["imported"]
    (warning,) = dataset["warnings"]
    assert "placeholder(s) {{author}}, {{name}}" in warning["message"] and warning["location"] == "record 1"
