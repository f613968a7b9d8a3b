"""The UI client's dataset methods against a real API (uvicorn in a thread on a free port, no runner), and the
Datasets page's pure formatting helpers."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio")
uvicorn = pytest.importorskip("uvicorn")

from app.client import ApiError  # noqa: E402
from app.pages.dataset_upload import UploadProgress, parse_columns, split_mapping, upload_file  # noqa: E402
from app.pages.datasets import import_markdown, upload_markdown  # noqa: E402


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_identity_dataset_is_created_filled_in_and_clashes_are_readable(client):
    ds = client.create_identity_dataset("Ada", "Acme Labs")
    assert (ds["name"], ds["builtin"], ds["num_rows"]) == ("identity-ada", False, 57)
    preview = json.dumps(client.get_dataset(ds["id"])["preview"])
    assert "Ada" in preview and "Acme Labs" in preview and "{{" not in preview

    with pytest.raises(ApiError) as clash:
        client.create_identity_dataset("ada", "Someone")
    assert clash.value.status_code == 409 and "identity-ada" in str(clash.value)
    named = client.create_identity_dataset("ada", "Someone", dataset_name="ada-2")
    assert named["name"] == "ada-2"

    with pytest.raises(ApiError) as invalid:
        client.create_identity_dataset("x" * 65, "Acme")
    assert invalid.value.status_code == 422 and any(d.startswith("name") for d in invalid.value.details)


def test_upload_with_dedup_then_rename_and_download(client, tmp_path):
    rows = [{"instruction": "Hi", "input": "", "output": "Hello"}] * 3 + [
        {"instruction": "Bye", "input": "", "output": "Goodbye"}]
    src = _write(tmp_path / "dupes.json", rows)
    kept = client.upload_dataset(src, "with-dupes")
    assert kept["num_rows"] == 4
    ds = client.upload_dataset(src, "no-dupes", dedup=True)
    assert (ds["num_rows"], ds["duplicates_dropped"]) == (2, 2)
    assert "2 duplicate rows dropped" in upload_markdown(ds, dedup=True)
    assert "dropped" not in upload_markdown(kept) and "2 warnings" in upload_markdown(kept)

    renamed = client.rename_dataset(ds["id"], "deduped")
    assert renamed["name"] == "deduped" and client.get_dataset(ds["id"])["name"] == "deduped"
    with pytest.raises(ApiError) as taken:
        client.rename_dataset(ds["id"], "with-dupes")
    assert taken.value.status_code == 409
    with pytest.raises(ApiError) as builtin:
        client.rename_dataset("identity", "mine")
    assert builtin.value.status_code == 409 and "built-in" in str(builtin.value)

    path = client.download_dataset(ds["id"], tmp_path / "out" / "deduped.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [row["messages"][0]["content"] for row in lines] == ["Hi", "Bye"]
    assert not list((tmp_path / "out").glob("*.part"))
    with pytest.raises(ApiError) as missing:
        client.download_dataset("ds_0000000000", tmp_path / "out" / "missing.jsonl")
    assert missing.value.status_code == 404 and not (tmp_path / "out" / "missing.jsonl").exists()


def test_llamafactory_zip_import_and_export_round_trip(client, tmp_path):
    rows = [{"instruction": f"Q{i}", "input": "", "output": f"A{i}"} for i in range(3)]
    info = {
        "lf_local": {"file_name": "local.json"},
        "lf_remote": {"hf_hub_url": "someone/something"},
        "lf_pairs": {"file_name": "local.json", "ranking": True},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data/dataset_info.json", json.dumps(info))
        zf.writestr("data/local.json", json.dumps(rows))
    src = tmp_path / "lf.zip"
    src.write_bytes(buf.getvalue())

    result = client.import_llamafactory_zip(src)
    assert [(d["name"], d["num_rows"]) for d in result["imported"]] == [("lf_local", 3)]
    assert {s["name"] for s in result["skipped"]} == {"lf_remote", "lf_pairs"}
    text = import_markdown(result)
    assert "Imported 1 dataset**" in text and "skipped 2 entries" in text
    assert "`lf_local`" in text and "`lf_remote`" in text and "remote" in text

    exported = client.export_llamafactory(tmp_path / "export" / "all.zip")
    with zipfile.ZipFile(exported) as zf:
        names = set(zf.namelist())
        assert any(n.endswith("dataset_info.json") for n in names)
        assert any(n.endswith("lf_local.json") for n in names)

    again = client.import_llamafactory_zip(exported)  # the same rows: reused, not copied as lf_local-2
    assert "lf_local" in {r["name"] for r in again["reused"]} and not again["skipped"]
    assert "lf_local-2" not in {d["name"] for d in again["imported"]}
    assert "`lf_local` → `lf_local` (3 rows)" in import_markdown(again)

    bad = tmp_path / "not-a.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ApiError) as err:
        client.import_llamafactory_zip(bad)
    assert err.value.status_code == 422


def test_import_markdown_groups_skipped_entries_by_reason():
    skipped = [{"name": f"hub_{i}", "reason": "remote datasets are not fetched"} for i in range(12)]
    skipped.append({"name": "pairs", "reason": "preference data"})
    text = import_markdown({"imported": [], "skipped": skipped}, max_names=8)
    assert "Imported 0 datasets**" in text and "skipped 13 entries" in text
    assert text.count("remote datasets are not fetched") == 1 and "and 4 more" in text
    assert text.index("`pairs`") < text.index("`hub_0`")  # rarest reasons first


def test_datasets_page_has_stable_elem_ids():
    from app.main import build_app

    demo = build_app("http://127.0.0.1:9/api/v1")  # nothing is fetched while building
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    needed = {"ds-identity-name", "ds-identity-author", "ds-identity-create", "ds-identity-status", "ds-import-file",
              "ds-import-run", "ds-import-status", "ds-dedup", "ds-download", "ds-export-lf", "ds-download-file",
              "ds-rename-name", "ds-rename", "ds-action-status", "ds-delete", "ds-advanced", "ds-format",
              "ds-columns", "ds-skip-invalid", "ds-import-skip-invalid"}
    assert needed <= ids, sorted(needed - ids)


# ---- uploads: a zip of several files, progress, advanced options --------------------------------------------
def _zip(path: Path, files: dict[str, str], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


CHAT = [{"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}"}]}
        for i in range(4)]


class Recorder:
    """Stands in for gr.Progress: records each (fraction, desc) it is called with."""

    def __init__(self):
        self.calls: list[tuple[float | None, str]] = []

    def __call__(self, fraction, desc=None):
        self.calls.append((fraction, desc or ""))


def test_zip_of_two_files_registers_both_with_streamed_progress(client, tmp_path):
    rows = [{"instruction": f"Q{i}", "input": "", "output": f"A{i}" * 2000} for i in range(40)]  # ~170 KB
    src = _zip(tmp_path / "mix.zip", {"qa.json": json.dumps(rows), "chat.jsonl": "".join(json.dumps(r) + "\n"
                                                                                       for r in CHAT)},
               zipfile.ZIP_STORED)
    seen: list[tuple[int, int]] = []
    ds = client.upload_dataset(src, dedup=True, on_progress=lambda sent, total: seen.append((sent, total)))
    got = sorted((d["name"], d["format"], d["num_rows"]) for d in ds["datasets"])
    assert got == [("chat", "messages", 4), ("qa", "alpaca", 40)]
    total = src.stat().st_size
    assert len(seen) > 2 and {t for _, t in seen} == {total} and seen[-1] == (total, total)
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)  # bytes only go up
    listed = {d["name"] for d in client.list_datasets()}
    assert {"chat", "qa"} <= listed

    text = upload_markdown(ds, dedup=True)
    assert "Registered **2 datasets**" in text and "| `qa` | alpaca | 40 |" in text and "| `chat` | messages | 4 |" in text


def test_upload_progress_reports_bytes_then_validating():
    report, ticks = Recorder(), iter(range(1000))
    progress = UploadProgress(report, "big.jsonl", clock=lambda: next(ticks) * 0.01)
    progress.start()
    for sent in range(0, 10_001, 10):  # 1 000 chunk reads of 10 bytes, 0.01 s apart
        progress(sent, 10_000)
    progress(10_000, 10_000)  # the end-of-file read
    fractions = [f for f, d in report.calls if d.startswith("Sending big.jsonl to the API:")]
    assert 50 <= len(fractions) <= 110 and fractions == sorted(fractions)  # throttled, increasing
    assert report.calls[0] == (0.0, "Sending big.jsonl to the API")
    assert report.calls[-1][0] == 1.0 and "validating and registering big.jsonl" in report.calls[-1][1]
    assert sum("validating" in d for _, d in report.calls) == 1


def test_bad_file_in_a_zip_registers_nothing_and_the_page_names_file_and_line(client, tmp_path):
    before = {d["id"] for d in client.list_datasets()}
    good = [{"instruction": "Q", "input": "", "output": "A"}]
    src = _zip(tmp_path / "broken.zip", {"good.json": json.dumps(good),
                                        "bad.jsonl": json.dumps(CHAT[0]) + "\n{oops\n"})
    report = Recorder()
    message, selected = upload_file(client, str(src), None, False, "auto", "", report)
    assert selected is None and "nothing was registered" in message
    assert "bad.jsonl line 2: not valid JSON" in message
    assert {d["id"] for d in client.list_datasets()} == before
    assert any("validating" in d for _, d in report.calls)  # it was sent, then refused by the API

    message, selected = upload_file(client, str(src), None, False, "auto", '{"prompt": ', Recorder())
    assert selected is None and "column mapping is not valid JSON" in message
    assert parse_columns('{"prompt": "question"}') == {"prompt": "question"} and parse_columns("  ") is None
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_columns('["prompt"]')


def test_a_llamafactory_zip_dropped_on_upload_is_imported(client, tmp_path):
    src = _zip(tmp_path / "lf-folder.zip", {"data/dataset_info.json": json.dumps({"lf_drop": {"file_name": "x.json"}}),
                                            "data/x.json": json.dumps([{"instruction": "Q", "output": "A"}])})
    message, selected = upload_file(client, str(src), None, False, "auto", "", Recorder())
    assert "imported as a LLaMA-Factory data folder" in message and "`lf_drop`" in message
    assert client.get_dataset(selected)["name"] == "lf_drop"


def test_advanced_format_and_column_mapping_reach_the_api(client, tmp_path):
    qa = _write(tmp_path / "qa_pairs.json", [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(3)])
    message, selected = upload_file(client, str(qa), None, False, "auto", "", Recorder())
    assert selected is None and "nothing was registered" in message  # neither alpaca nor chat: detection fails
    assert "Advanced: format & column mapping" in message  # issue 12 group 8: the error points to the mapping

    message, selected = upload_file(client, str(qa), None, False, "alpaca",
                                    '{"prompt": "question", "response": "answer"}', Recorder())
    assert selected is not None, message
    detail = client.get_dataset(selected)
    assert (detail["format"], detail["num_rows"]) == ("alpaca", 3)
    assert detail["preview"][0]["messages"] == [{"role": "user", "content": "Q0?"},
                                                {"role": "assistant", "content": "A0."}]

    dialog = tmp_path / "support.jsonl"
    dialog.write_text(json.dumps({"dialog": [{"speaker": "customer", "says": "My order is late."},
                                             {"speaker": "agent", "says": "Sorry, let me check."}]}) + "\n")
    mapping = ('{"messages": "dialog", "role_tag": "speaker", "content_tag": "says", "user_tag": "customer", '
               '"assistant_tag": "agent"}')
    message, selected = upload_file(client, str(dialog), None, False, "sharegpt", mapping, Recorder())
    assert selected is not None, message
    assert [m["role"] for m in client.get_dataset(selected)["preview"][0]["messages"]] == ["user", "assistant"]

    message, selected = upload_file(client, str(qa), "typo", False, "auto", '{"promt": "question"}', Recorder())
    assert selected is None and "unknown key 'promt'" in message


def test_split_mapping_sends_role_tags_apart():
    assert split_mapping(None) == (None, None)
    assert split_mapping({"prompt": "q", "role_tag": "speaker"}) == ({"prompt": "q"}, {"role_tag": "speaker"})
    assert split_mapping({"columns": {"messages": "d"}, "tags": {"user_tag": "u"}}) == ({"messages": "d"},
                                                                                        {"user_tag": "u"})


# ---- a refused file: each problem once, all of them, the mapping hint only for field names (issue 12 group 8) --
def test_each_upload_problem_is_printed_once_and_none_is_hidden(client, tmp_path):
    from app.pages.dataset_errors import message_without_problems

    bad = tmp_path / "bad2.jsonl"
    bad.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n{oops\n"
                   + json.dumps({"instruction": "", "output": "a"}) + "\n", encoding="utf-8")
    message, selected = upload_file(client, str(bad), None, False, "auto", "", Recorder())
    assert selected is None and "bad2.jsonl was not imported (2 problems found)." in message
    assert message.count("not valid JSON") == 1 and message.count("the prompt is empty") == 1
    assert "line 3 instruction: the prompt is empty" in message and "listed in 'errors'" not in message
    assert "column mapping" not in message  # a JSON syntax error is no field-name problem

    many = tmp_path / "many.jsonl"
    many.write_text("{oops\n" * 25, encoding="utf-8")
    message, _ = upload_file(client, str(many), None, False, "auto", "", Recorder())
    assert message.count("not valid JSON") == 20 and "… and 5 more problems (the API lists the first 20)" in message
    zh, _ = upload_file(client, str(many), None, False, "auto", "", Recorder(), lang="zh")
    assert "另有 5 个问题" in zh

    qa = _write(tmp_path / "qa.json", [{"question": "q", "answer": "a"}])
    message, _ = upload_file(client, str(qa), None, False, "auto", "", Recorder())
    assert message.count("unknown dataset format") == 1 and "column mapping" in message

    zipped = ("pack.zip: nothing was registered, 2 of its data files are rejected (a.jsonl, b.json). a.jsonl was "
              "not imported (1 problem found). line 2: not valid JSON: Expecting value (column 1). The other files' "
              "problems are listed in 'errors'. Fix the files (or leave them out of the zip) and upload it again.")
    assert message_without_problems(zipped, [{"loc": ["a.jsonl line 2"], "msg": "not valid JSON: Expecting value "
                                                                                "(column 1)."}]) == (
        "pack.zip: nothing was registered, 2 of its data files are rejected (a.jsonl, b.json). a.jsonl was not "
        "imported (1 problem found). Fix the files (or leave them out of the zip) and upload it again.")


def test_import_shows_skipped_records_placeholders_and_every_problem_of_a_refused_entry(client, tmp_path):
    """Issue 12 group 8: one bad record rejected a whole entry, "(1 more listed in 'errors')" hid the rest, and
    {{name}} placeholders were kept without a word."""
    rows = [{"instruction": "Q", "input": "", "output": "A"}, {"instruction": "", "input": "", "output": "x"},
            {"instruction": 3, "output": "y"}, {"instruction": "Who?", "input": "", "output": "I am {{name}}."}]
    src = _zip(tmp_path / "lf-bad.zip", {"dataset_info.json": json.dumps({"lf_rows": {"file_name": "rows.json"}}),
                                         "rows.json": json.dumps(rows)})
    message, selected = upload_file(client, str(src), None, False, "auto", "", Recorder())
    assert selected is None and "skipped 1 entry" in message
    assert "record 2 instruction: the prompt is empty" in message and "record 3" in message
    assert "listed in 'errors'" not in message and "Skip invalid rows" in message

    message, selected = upload_file(client, str(src), None, False, "auto", "", Recorder(), skip_invalid=True)
    assert selected is not None and client.get_dataset(selected)["num_rows"] == 2
    assert "2 invalid record(s) skipped" in message and "record 2 instruction: skipped: the prompt is empty" in message
    assert "{{name}}" in message and "Identity demo" in message  # the entry's placeholder warning, by entry

    message, _ = upload_file(client, str(src), None, False, "auto", "", Recorder(), skip_invalid=True, lang="zh")
    assert "数据已注册过" in message and "`lf_rows` → `lf_rows` (2 rows)" not in message


def test_upload_can_skip_invalid_rows(client, tmp_path):
    bad = tmp_path / "half.jsonl"
    bad.write_text(json.dumps(CHAT[0]) + "\n{oops\n" + json.dumps(CHAT[1]) + "\n", encoding="utf-8")
    message, selected = upload_file(client, str(bad), "half", False, "auto", "", Recorder(), skip_invalid=True)
    assert selected is not None and client.get_dataset(selected)["num_rows"] == 2
    assert "line 2: skipped: not valid JSON" in message


# ---- the column-mapping form (issue 12 group 8: a raw JSON box was the only way) -----------------------------
def test_the_form_offers_the_files_columns_and_its_picks_reach_the_api(client, tmp_path):
    import pandas as pd

    from app.pages.dataset_columns import FORM_KEYS, columns_found, file_columns, form_mapping, merge_mapping

    qa = _write(tmp_path / "qa.json", [{"question": f"Q{i}?", "answer": f"A{i}.", "topic": "x"} for i in range(3)])
    assert file_columns(qa) == ["question", "answer", "topic"]
    lines = tmp_path / "qa.jsonl"
    lines.write_text("".join(json.dumps({"q": i, "a": i}) + "\n" for i in range(3)) + '{"cut off', encoding="utf-8")
    assert file_columns(lines) == ["q", "a"]
    (tmp_path / "t.csv").write_text("ask,reply\nA?,a\n", encoding="utf-8")
    assert file_columns(tmp_path / "t.csv") == ["ask", "reply"]
    pd.DataFrame([{"inst": "x", "out": "y"}]).to_parquet(tmp_path / "t.parquet")
    assert file_columns(tmp_path / "t.parquet") == ["inst", "out"]
    assert file_columns(_zip(tmp_path / "z.zip", {"a/one.json": json.dumps([{"k": 1}])})) == ["k"]
    assert file_columns(tmp_path / "missing.json") == [] and file_columns(None) == []
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as zf:
        zf.write(tmp_path / "t.parquet", "data/t.parquet")
    assert file_columns(tmp_path / "p.zip") == ["inst", "out"]

    text, *pickers, cleared = columns_found("en", str(qa))
    assert "`question`, `answer`, `topic`" in text and len(pickers) == len(FORM_KEYS) and cleared == {}
    assert all(p.choices == [("question", "question"), ("answer", "answer"), ("topic", "topic")] for p in pickers)

    picked = form_mapping(*[{"prompt": "question", "response": "answer"}.get(k) for k in FORM_KEYS])
    assert picked == {"prompt": "question", "response": "answer"}
    message, selected = upload_file(client, str(qa), None, False, "auto", "", Recorder(), picked=picked)
    assert selected is not None, message
    assert client.get_dataset(selected)["preview"][0]["messages"] == [{"role": "user", "content": "Q0?"},
                                                                     {"role": "assistant", "content": "A0."}]
    assert merge_mapping(picked, {"role_tag": "speaker"}) == {**picked, "role_tag": "speaker"}
    message, selected = upload_file(client, str(qa), None, False, "auto", '{"prompt": "topic"}', Recorder(),
                                    picked=picked)
    assert selected is None and "give different columns for 'prompt'" in message


def test_the_import_accordion_passes_skip_invalid_and_selects_a_reused_dataset(client, tmp_path):
    from app.pages.datasets import do_import

    rows = [{"instruction": "Hi?", "input": "", "output": "Hello."}, {"instruction": "", "output": "x"}]
    src = _zip(tmp_path / "lf-acc.zip", {"dataset_info.json": json.dumps({"lf_acc": {"file_name": "acc.json"}}),
                                         "acc.json": json.dumps(rows)})
    message, _frame, dropdown, cleared = do_import(client, "en", str(src), False)
    assert "skipped 1 entry" in message and "record 2" in message and dropdown.value is None
    message, _frame, dropdown, cleared = do_import(client, "en", str(src), True)
    assert "Imported 1 dataset**" in message and cleared is None
    first = dropdown.value
    assert client.get_dataset(first)["name"] == "lf_acc"
    message, _frame, dropdown, _ = do_import(client, "en", str(src), True)  # the same rows again: reused
    assert "`lf_acc` → `lf_acc` (1 row)" in message and dropdown.value == first
