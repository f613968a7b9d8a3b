"""Reading files and collecting every problem with its location (validate.normalize_file)."""

import json
from pathlib import Path

import pytest

from backend.datasets.errors import DatasetValidationError, UnsupportedFileType
from backend.datasets.readers import file_type, first_invalid_utf8
from backend.datasets.validate import normalize_file

GOOD = {"instruction": "Say hi", "input": "", "output": "Hi!"}


def normalize(tmp_path: Path, filename: str, content: bytes | str):
    src = tmp_path / filename
    src.write_bytes(content.encode() if isinstance(content, str) else content)
    dest = tmp_path / "out.jsonl"
    report = normalize_file(src, file_type(filename), filename, dest)
    return report, [json.loads(line) for line in dest.read_text().splitlines()]


def rejected(tmp_path: Path, filename: str, content: bytes | str) -> DatasetValidationError:
    with pytest.raises(DatasetValidationError) as info:
        normalize(tmp_path, filename, content)
    return info.value


def jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def test_file_type_by_extension():
    assert file_type("a.JSONL") == "jsonl" and file_type(r"C:\data\b.parquet") == "parquet"
    assert file_type("notes.TXT") == "txt"
    with pytest.raises(UnsupportedFileType, match=r"'\.md'.*\.json, \.jsonl, \.csv, \.parquet, \.txt"):
        file_type("notes.md")


def test_jsonl_reports_every_malformed_line_with_its_number(tmp_path):
    err = rejected(tmp_path, "d.jsonl", jsonl(GOOD, '{"instruction": "a" "output": "b"}', GOOD, "{oops"))
    assert err.error_count == 2
    assert [e["location"] for e in err.errors] == ["line 2", "line 4"]
    assert "Expecting ',' delimiter (column 21)" in err.errors[0]["message"]
    assert err.message.startswith("d.jsonl was not imported (2 problems found). line 2: not valid JSON")
    assert "Each line of a JSONL file must be one JSON object" in err.message


def test_json_array_error_names_record_line_and_column(tmp_path):
    text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]'
    err = rejected(tmp_path, "d.json", text)
    assert err.errors[0]["location"] == "record 2"
    assert "line 3, column 23: Expecting ',' delimiter" in err.errors[0]["message"]


def test_non_utf8_byte_offset_in_jsonl_and_json(tmp_path):
    line1 = json.dumps(GOOD) + "\n"
    err = rejected(tmp_path, "d.jsonl", line1.encode() + b'{"instruction": "caf\xe9", "output": "x"}\n')
    assert err.errors[0]["location"] == "line 2"
    assert f"byte offset {len(line1) + 20} is not valid UTF-8" in err.errors[0]["message"]
    err = rejected(tmp_path, "d.json", b'[{"instruction": "\xff"}]')
    assert "byte 0xff at byte offset 18" in err.errors[0]["message"] and err.error_count == 1


def test_first_invalid_utf8_handles_characters_split_across_chunks(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("é".encode() * 10 + b"\xff")
    assert first_invalid_utf8(path, chunk_size=3) == 20
    path.write_bytes("é".encode() * 10)
    assert first_invalid_utf8(path, chunk_size=3) is None


def test_field_problems_carry_record_number_and_field(tmp_path):
    rows = [GOOD, {"instruction": "a", "output": 5}, {"input": "x", "output": "y"}, {"instruction": "a", "output": ""}]
    err = rejected(tmp_path, "d.json", json.dumps(rows))
    assert [(e["location"], e["field"]) for e in err.errors] == [
        ("record 2", "output"), ("record 3", "instruction"), ("record 4", "output")]
    assert "must be a string (text in quotes), got number" in err.errors[0]["message"]
    assert "required field 'instruction' (the prompt) is missing" in err.errors[1]["message"]


def test_unknown_format_lists_found_keys_and_accepted_formats(tmp_path):
    err = rejected(tmp_path, "d.jsonl", jsonl({"question": "q", "answer": "a"}))
    message = err.errors[0]["message"]
    assert "has keys [answer, question]" in message
    assert "alpaca" in message and "sharegpt" in message and "messages" in message


def test_only_the_first_20_problems_are_kept_but_all_are_counted(tmp_path):
    err = rejected(tmp_path, "d.jsonl", jsonl(*["not json"] * 35))
    assert err.error_count == 35 and len(err.errors) == 20 and "34 more" in err.message


def test_empty_file_and_empty_array(tmp_path):
    assert "empty" in rejected(tmp_path, "d.jsonl", b"").message
    assert "no records" in rejected(tmp_path, "d.json", "[]").message


def test_duplicates_are_warnings_not_errors(tmp_path):
    report, rows = normalize(tmp_path, "d.jsonl", jsonl(GOOD, {**GOOD, "output": "Hello"}, GOOD))
    assert report.num_rows == 3 and len(rows) == 3
    assert report.warning_count == 1
    assert report.warnings[0].location == "line 3" and "duplicates line 1" in report.warnings[0].message


def test_placeholders_left_in_uploads_are_a_warning(tmp_path):
    report, _ = normalize(tmp_path, "d.jsonl", jsonl({"instruction": "who?", "output": "I am {{name}}."}))
    assert report.warning_count == 1 and "{{name}}" in report.warnings[0].message


def test_placeholder_warning_names_each_placeholder_and_where(tmp_path):
    """Issue 12 group 8: LLaMA-Factory's identity.json kept {{name}}/{{author}} without a word."""
    report, _ = normalize(tmp_path, "d.jsonl", jsonl(GOOD, {"instruction": "who?", "output": "I am {{name}}."},
                                                     {"instruction": "by?", "output": "{{ author }} made me."}))
    (warning,) = report.warnings
    assert warning.location == "line 2" and "2 record(s) contain the placeholder(s) {{author}}, {{name}}" in (
        warning.message) and "Identity demo" in warning.message
    report, _ = normalize(tmp_path, "d.jsonl", jsonl({"instruction": "x", "output": "{{city}}"}))
    assert "{{city}}" in report.warnings[0].message and "Identity demo" not in report.warnings[0].message


def test_skip_invalid_keeps_the_good_records_and_lists_the_skipped_ones(tmp_path):
    """Issue 12 group 8: one bad record rejected a whole file; with skip_invalid it is left out and named."""
    from backend.datasets.validate import NormalizeOptions

    src = tmp_path / "d.jsonl"
    src.write_text(jsonl(GOOD, "{oops", {"instruction": "", "output": "x"}, {**GOOD, "output": "Hey"}))
    dest = tmp_path / "out.jsonl"
    report = normalize_file(src, "jsonl", "d.jsonl", dest, options=NormalizeOptions(skip_invalid=True))
    assert report.num_rows == 2 and len(dest.read_text().splitlines()) == 2
    assert [w.location for w in report.warnings] == ["file", "line 2", "line 3"] and report.warning_count == 3
    assert report.warnings[0].message.startswith("2 invalid record(s) skipped")
    assert report.warnings[1].message.startswith("skipped: not valid JSON")
    assert report.warnings[2].message.startswith("skipped: the prompt is empty")
    with pytest.raises(DatasetValidationError) as info:  # nothing good left: the file's errors after all
        src.write_text(jsonl("{oops", {"instruction": "", "output": "x"}))
        normalize_file(src, "jsonl", "d.jsonl", dest, options=NormalizeOptions(skip_invalid=True))
    assert [e["location"] for e in info.value.errors] == ["line 1", "line 2"]


def test_json_file_holding_jsonl_is_sniffed(tmp_path):
    report, rows = normalize(tmp_path, "d.json", jsonl(GOOD, {**GOOD, "output": "Hey"}))
    assert report.format == "alpaca" and report.num_rows == 2


def test_jsonl_file_holding_an_array_is_sniffed(tmp_path):
    report, _ = normalize(tmp_path, "d.jsonl", json.dumps([GOOD, {**GOOD, "output": "Hey"}], indent=2))
    assert report.num_rows == 2
    err = rejected(tmp_path, "d.jsonl", '[\n{"instruction": "a", "output": "b"},\n{"instruction": 1 "output": "b"}\n]')
    assert err.errors[0]["location"] == "record 2"


def test_single_json_object_is_one_record(tmp_path):
    report, rows = normalize(tmp_path, "d.json", json.dumps({"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}))
    assert report.format == "messages" and rows[0]["messages"][1]["content"] == "a"


def test_csv_alpaca_and_json_encoded_messages_column(tmp_path):
    report, rows = normalize(tmp_path, "d.csv", 'instruction,input,output\n"Add 1, 2",,3\nSay hi,,"Hi,\nthere"\n')
    assert report.format == "alpaca" and rows[0]["messages"][0]["content"] == "Add 1, 2"
    assert rows[1]["messages"][1]["content"] == "Hi,\nthere"
    cell = json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]).replace('"', '""')
    report, rows = normalize(tmp_path, "m.csv", f'messages\n"{cell}"\n')
    assert report.format == "messages" and rows[0]["messages"][0] == {"role": "user", "content": "q"}


def test_csv_row_with_too_many_cells_names_the_record(tmp_path):
    err = rejected(tmp_path, "d.csv", "instruction,output\na,b\nc,d,e\n")
    assert err.errors[0]["location"] == "record 2" and "more cells than the header" in err.errors[0]["message"]


def test_parquet_with_nested_messages(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"messages": [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]] * 2})
    pq.write_table(table, tmp_path / "d.parquet")
    report = normalize_file(tmp_path / "d.parquet", "parquet", "d.parquet", tmp_path / "o.jsonl")
    assert report.format == "messages" and report.num_rows == 2 and report.warning_count == 1
    assert "not a readable Parquet file" in rejected(tmp_path, "x.parquet", b"PAR1 nonsense").message
