"""POST /api/v1/datasets: a zip of several data files (one dataset each, all or none) and the size limit
enforced while the body is still arriving."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

from backend.api.main import create_app
from backend.api.upload_limit import FORM_OVERHEAD
from backend.settings import Settings

URL = "/api/v1/datasets"
ALPACA = [{"instruction": f"Spell {w}", "input": "", "output": "-".join(w)} for w in ("cat", "dog", "owl")]
CHAT = [{"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}"}]}
        for i in range(4)]
CSV = "instruction,output\nName a colour,Blue\nName a fruit,Pear\n"


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def post_zip(api, files: dict[str, str], name: str | None = None, **params):
    return api.post(URL, files={"file": ("pack.zip", zip_bytes(files))}, data={"name": name} if name else None,
                    params=params)


def names(api) -> list[str]:
    return sorted(d["name"] for d in api.get(URL).json()["data"])


def leftovers(home: Settings) -> list[str]:
    return sorted(p.name for p in home.datasets_dir.iterdir())


def test_zip_of_several_files_registers_each_with_its_format_and_rows(api):
    resp = post_zip(api, {"sets/spell.json": json.dumps(ALPACA), "sets/chat.jsonl": jsonl(CHAT + CHAT[:1]),
                          "colours.csv": CSV, "README.md": "not data"}, dedup="true")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    got = {d["name"]: (d["format"], d["num_rows"], d["source_filename"], d["duplicates_dropped"])
           for d in body["datasets"]}
    assert got == {"colours": ("alpaca", 2, "colours.csv", 0), "spell": ("alpaca", 3, "spell.json", 0),
                   "chat": ("messages", 4, "chat.jsonl", 1)}
    # files in zip-name order; the top level repeats the first, as for a single-file upload
    assert [d["name"] for d in body["datasets"]] == ["colours", "chat", "spell"]
    assert {k: body[k] for k in ("id", "name", "num_rows")} == {k: body["datasets"][0][k] for k in ("id", "name", "num_rows")}
    listed = {d["name"]: d for d in api.get(URL).json()["data"]}
    for created in body["datasets"]:
        assert listed[created["name"]]["id"] == created["id"]
        rows = api.get(f"{URL}/{created['id']}/download").text.splitlines()
        assert len(rows) == created["num_rows"]
    assert json.loads(api.get(f"{URL}/chat/download").text.splitlines()[0]) == CHAT[0]


def test_zip_with_a_txt_file_registers_it_as_raw_text(api):
    resp = post_zip(api, {"notes.txt": "First document,\nwrapped.\n\nSecond document.\n", "spell.json": json.dumps(ALPACA)})
    assert resp.status_code == 201, resp.text
    got = {d["name"]: (d["format"], d["num_rows"]) for d in resp.json()["datasets"]}
    assert got == {"notes": ("text", 2), "spell": ("alpaca", 3)}


def test_names_come_from_the_stems_and_are_made_unique(api):
    assert api.post(URL, files={"file": ("train.json", json.dumps(ALPACA))}).status_code == 201
    resp = post_zip(api, {"a/train.json": json.dumps(ALPACA), "b/train.jsonl": jsonl(CHAT), "Train.csv": CSV})
    assert resp.status_code == 201, resp.text
    assert [d["name"] for d in resp.json()["datasets"]] == ["Train-2", "train-3", "train-4"]  # case-insensitive clash

    prefixed = post_zip(api, {"x.json": json.dumps(ALPACA), "y.jsonl": jsonl(CHAT)}, name="batch")
    assert [d["name"] for d in prefixed.json()["datasets"]] == ["batch-x", "batch-y"]
    single = post_zip(api, {"only.json": json.dumps(ALPACA)}, name="mine")
    assert (single.json()["name"], len(single.json()["datasets"])) == ("mine", 1)


def test_one_bad_file_registers_nothing_and_names_the_file_and_row(api, home):
    before, files_before = names(api), leftovers(home)
    bad_jsonl = jsonl(CHAT[:1]) + "{not json\n" + jsonl(CHAT[1:2])
    bad_alpaca = json.dumps([ALPACA[0], {"instruction": "", "input": "", "output": "x"}])
    resp = post_zip(api, {"good.json": json.dumps(ALPACA), "data/bad.jsonl": bad_jsonl, "worse.json": bad_alpaca})
    assert resp.status_code == 422, resp.text
    detail = resp.json()
    assert detail["message"].startswith("pack.zip: nothing was registered, 2 of its data files are rejected "
                                        "(data/bad.jsonl, worse.json).")
    assert "line 2: not valid JSON" in detail["message"]
    locations = [e["loc"][0] for e in detail["errors"]]
    assert locations[0] == "data/bad.jsonl line 2" and "worse.json record 2" in locations
    assert detail["error_count"] == len(detail["errors"]) >= 2
    assert names(api) == before and leftovers(home) == files_before


def test_upload_over_the_limit_is_413_and_leaves_nothing(tmp_path):
    from fastapi.testclient import TestClient

    assert Settings.from_env(tmp_path / "default").max_upload_bytes == 2 * 1024**3
    small = Settings(home=tmp_path / "small", max_upload_bytes=2_000)
    with TestClient(create_app(small, start_runner=False)) as client:
        before = sorted(p.name for p in small.datasets_dir.iterdir())
        over = jsonl(CHAT * 30)  # over 2 000 bytes, under 2 000 + the form overhead: the registry's copy stops it
        resp = client.post(URL, files={"file": ("big.jsonl", over)})
        assert resp.status_code == 413 and "larger than the 2.0 KiB limit" in resp.json()["message"]
        huge = client.post(URL, files={"file": ("huge.jsonl", "x" * (2_000 + FORM_OVERHEAD + 1))})
        assert huge.status_code == 413 and "TUNESMITH_MAX_UPLOAD_BYTES" in huge.text
        lf_zip = client.post(f"{URL}/import", files={"file": ("lf.zip", b"x" * (2_000 + FORM_OVERHEAD + 1))})
        assert lf_zip.status_code == 413  # the LLaMA-Factory import route is limited the same way
        assert sorted(p.name for p in small.datasets_dir.iterdir()) == before
        assert [d["name"] for d in client.get(URL).json()["data"] if not d["builtin"]] == []


def _asgi_post(app, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    """POST ``chunks`` as a streamed body straight into the ASGI app: (status, JSON body, chunks it read)."""
    pulled, sent = 0, []

    async def receive():
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        await asyncio.sleep(3600)  # the app must not wait for a disconnect here

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": URL, "raw_path": URL.encode(), "root_path": "", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_limit_answers_413_mid_stream_before_the_rest_arrives(tmp_path):
    limit = 100_000
    settings = Settings(home=tmp_path / "home", max_upload_bytes=limit)
    app = create_app(settings, start_runner=False, register_builtins=False)
    boundary = b"tunesmithboundary"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    chunk = (json.dumps(CHAT[0]) + "\n").encode() * 200  # about 16 KiB
    chunks = [head] + [chunk] * 200  # about 3 MB, sent without a Content-Length
    content_type = [(b"content-type", b"multipart/form-data; boundary=" + boundary)]

    status, body, pulled = _asgi_post(app, chunks, content_type)
    assert status == 413 and "TUNESMITH_MAX_UPLOAD_BYTES" in json.dumps(body)
    assert pulled <= (limit + FORM_OVERHEAD) // len(chunk) + 2  # stopped at the limit, not at the end
    assert sorted(p.name for p in settings.datasets_dir.iterdir()) == []

    declared = content_type + [(b"content-length", str(sum(map(len, chunks))).encode())]
    status, body, pulled = _asgi_post(app, chunks, declared)
    assert (status, pulled) == (413, 0)  # refused on its Content-Length, before reading a byte
