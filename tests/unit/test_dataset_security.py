"""Hostile dataset files: deep nesting, huge records, zip bombs, `~` paths, NaN. Each must become a clear
problem naming the file, line/record and field, never a RecursionError, a MemoryError or an unbounded read."""

import builtins
import io
import json
import resource
import subprocess
import zipfile
from contextlib import contextmanager

import pytest

from backend.config.schema import RunConfig
from backend.datasets import uploads
from backend.datasets.archives import MAX_RATIO, unpack_data_files
from backend.datasets.errors import DatasetTooLarge, DatasetValidationError
from backend.datasets.json_stream import MAX_DEPTH, MAX_RECORD_BYTES, deepest_field, nesting_problem
from backend.datasets.readers import file_type
from backend.datasets.registry import DatasetRegistry
from backend.datasets.uploads import human_bytes
from backend.datasets.validate import NormalizeOptions, normalize_file
from backend.errors import InsufficientStorage, Invalid
from backend.local_paths import check_client_path
from backend.settings import Settings

GOOD = {"instruction": "Say hi.", "output": "Hi!"}
DEEP = 100_000  # far past Python's recursion limit


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def rejected(tmp_path, name: str, content: str | bytes) -> DatasetValidationError:
    src = tmp_path / name
    src.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DatasetValidationError) as info:
        normalize_file(src, file_type(name), name, tmp_path / "out.jsonl", options=NormalizeOptions())
    return info.value


def test_deeply_nested_jsonl_line_names_line_and_field(tmp_path):
    deep_line = '{"instruction": "q", "output": "a", "history": ' + deep_json(DEEP) + "}"
    err = rejected(tmp_path, "deep.jsonl", "\n".join([json.dumps(GOOD), deep_line, json.dumps(GOOD)]))
    problem = err.errors[0]
    assert problem["location"] == "line 2" and problem["field"] == "history"
    assert f"more than {MAX_DEPTH} levels deep" in problem["message"]
    assert err.message.startswith("deep.jsonl was not imported")


def test_deeply_nested_json_array_element_is_streamed_and_named(tmp_path):
    deep = '{"instruction": "q", "output": "a", "history": ' + deep_json(DEEP) + "}"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = rejected(tmp_path, "deep.json", f"[{json.dumps(GOOD)}, {deep}]")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert err.errors[0]["location"] == "record 2" and err.errors[0]["field"] == "history"
    assert grown_mb < 200  # ijson.items' path prefixes would need gigabytes here


def test_moderately_nested_values_are_fine_and_the_limit_is_exact():
    assert nesting_problem({"tools": json.loads(deep_json(MAX_DEPTH - 1))}) is None
    assert nesting_problem({"tools": json.loads(deep_json(MAX_DEPTH))}) == "tools"
    assert deepest_field('{"a": 1, "b": ' + deep_json(MAX_DEPTH + 1) + "}") == "b"


def test_record_larger_than_the_limit_is_a_problem_not_a_read(tmp_path):
    huge = json.dumps({"instruction": "q", "output": "x" * (MAX_RECORD_BYTES + 2**20)})
    err = rejected(tmp_path, "huge.jsonl", "\n".join([json.dumps(GOOD), huge, json.dumps(GOOD)]))
    assert err.errors[0]["location"] == "line 2" and "larger than 16 MiB" in err.errors[0]["message"]
    err = rejected(tmp_path, "huge.json", f"[{json.dumps(GOOD)}, {huge}]")
    assert err.errors[0]["location"] == "record 2" and "larger than 16 MiB" in err.errors[0]["message"]


def test_streamed_json_array_keeps_its_errors_and_floats(tmp_path):
    rows = [GOOD, {"instruction": "w", "output": "x", "system": "s"}]
    src = tmp_path / "ok.json"
    src.write_text("\ufeff" + json.dumps(rows, indent=1), encoding="utf-8")
    report = normalize_file(src, "json", "ok.json", tmp_path / "out.jsonl")
    assert report.num_rows == 2
    err = rejected(tmp_path, "bad.json", '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]')
    assert err.errors[0]["location"] == "record 2" and "line 3, column 23" in err.errors[0]["message"]
    err = rejected(tmp_path, "tail.json", f"[{json.dumps(GOOD)}] trailing")
    assert "Extra data after the closing ']'" in err.errors[0]["message"]


def test_deep_csv_cell_names_its_column(tmp_path):
    cell = deep_json(DEEP).replace('"', '""')
    err = rejected(tmp_path, "deep.csv", f'instruction,output,history\nq,a,"{cell}"\n')
    assert err.errors[0]["field"] == "history" and "levels deep" in err.errors[0]["message"]


def test_zip_bomb_is_refused_by_its_inflation_ratio(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("one-line.jsonl", b"a" * (64 * 1024 * 1024))  # 64 MiB -> about 64 KB
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DatasetTooLarge, match=f"more than {MAX_RATIO} times its compressed size"):
        unpack_data_files(bomb, "bomb.zip", tmp_path / "out", 2 * 1024**3, (".jsonl",))
    extracted = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert extracted <= 40 * 1024 * 1024  # stopped soon after RATIO_FLOOR, not at the 2 GiB upload limit


@pytest.mark.parametrize("path", ["~root/models/x", "~/models/x", "~no-such-user-xyz", "/tmp/a\x00b"])
def test_client_paths_with_tilde_or_nul_are_refused_without_lookup(path):
    with pytest.raises(Invalid) as info:
        check_client_path(path, ("body", "base_model"))
    assert info.value.status == 422 and info.value.loc == ("body", "base_model")
    assert "/root" not in info.value.message  # nothing about the server's users comes back


@pytest.mark.parametrize("field,value", [("learning_rate", float("nan")), ("num_epochs", float("inf")),
                                         ("warmup_ratio", float("-inf"))])
def test_nan_and_infinity_are_refused_by_the_run_config(field, value):
    with pytest.raises(ValueError) as info:
        RunConfig.model_validate({"base_model": "m", "datasets": ["d"], field: value})
    assert field in str(info.value) and "finite number" in str(info.value)


@contextmanager
def tiny_filesystem(path, size_mb: int):
    """A real tmpfs of ``size_mb`` at ``path`` (needs root, as on CI); yields None where mounting is not allowed."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_during_upload_is_507_with_the_space_needed_and_keeps_nothing(tmp_path, monkeypatch):
    rows = "".join(json.dumps({"instruction": f"q{i}", "output": "x" * 500}) + "\n" for i in range(12_000))
    with tiny_filesystem(tmp_path / "disk", 4) as disk:
        if disk is None:  # no mount permission: the kernel's own ENOSPC from /dev/full, at the same write
            def full_open(path, mode="r", *args, **kwargs):
                return builtins.open("/dev/full" if "w" in mode else path, mode, *args, **kwargs)
            monkeypatch.setattr(uploads, "open", full_open, raising=False)
            disk = tmp_path / "disk"
        registry = DatasetRegistry(Settings(home=disk / "home"))
        with pytest.raises(InsufficientStorage) as info:
            registry.create_all_from_upload("big.jsonl", io.BytesIO(rows.encode()), name="big")
        err = info.value
        assert err.status == 507 and "is full" in err.message and "Nothing was kept" in err.message
        assert human_bytes(len(rows) * 2) in err.message and "free" in err.message
        assert registry.list() == []
        assert [p.name for p in registry.datasets_dir.iterdir()] == []  # the work folder went with it
        three = "".join(rows.splitlines(keepends=True)[:3])
        small = registry.create_all_from_upload("ok.jsonl", io.BytesIO(three.encode()), name="ok")
        assert small[0].num_rows == 3  # the studio goes on working once there is room
