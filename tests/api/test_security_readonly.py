"""A home folder that cannot be written: the studio starts (one log line, no traceback), reads work, every API
write answers 503 saying why. Tested on a real tmpfs remounted read-only (as root, like CI), or with the write
bits removed for other users."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.api.main import create_app
from backend.settings import Settings
from tests.api.test_security_server import serve

ROWS = "\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(4)).encode()


@contextmanager
def freezable_folder(path: Path):
    """A folder and a function that makes it read-only for real: a tmpfs remounted ro (root), else chmod."""
    path.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
                          capture_output=True).returncode != 0:
            pytest.skip("running as root without permission to mount a tmpfs: no way to make a folder read-only")

        def freeze():
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        try:
            yield path, freeze
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
        return

    def freeze():
        for folder, dirs, files in os.walk(path):
            for name in [*dirs, *files, "."]:
                target = Path(folder) / name
                target.chmod(target.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield path, freeze
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)


def test_read_only_home_serves_reads_and_answers_writes_503(tmp_path, caplog):
    with freezable_folder(tmp_path / "disk") as (disk, freeze):
        settings = Settings(home=disk / "home")
        with TestClient(create_app(settings, start_runner=False, register_builtins=False)) as client:
            created = client.post("/api/v1/datasets", files={"file": ("d.jsonl", io.BytesIO(ROWS))},
                                  data={"name": "kept"})
            assert created.status_code == 201, created.text
            dataset_id = created.json()["id"]
        freeze()

        caplog.set_level(logging.WARNING)
        with TestClient(create_app(settings)) as client:  # the runner would write: it is not started
            lines = [r for r in caplog.records if "read-only" in r.getMessage()]
            assert len(lines) == 1 and lines[0].exc_info is None and "cannot be written" in lines[0].getMessage()

            listed = client.get("/api/v1/datasets").json()
            assert [d["name"] for d in listed["data"]] == ["kept"]
            assert client.get(f"/api/v1/datasets/{dataset_id}/download").content.strip() != b""
            assert client.get("/api/v1/jobs").status_code == 200

            upload = client.post("/api/v1/datasets", files={"file": ("e.jsonl", io.BytesIO(ROWS))})
            assert upload.status_code == 503
            body = upload.json()
            assert "cannot be written" in body["message"] and "nothing was changed" in body["message"]
            assert client.delete(f"/api/v1/datasets/{dataset_id}").status_code == 503
            assert client.post("/api/v1/jobs", json={"base_model": "m", "datasets": ["kept"]}).status_code == 503
            assert client.post("/api/v1/jobs/preview", json={"base_model": "m", "datasets": ["kept"]}).status_code != 503
            assert [d["name"] for d in client.get("/api/v1/datasets").json()["data"]] == ["kept"]

        with serve(tmp_path, {"TUNESMITH_HOME": str(settings.home)}) as (base, _):
            assert httpx.get(f"{base}/api/v1/datasets").json()["count"] == 1
        log = (tmp_path / "studio.log").read_text()
        assert "Traceback" not in log and log.count("serving it read-only") == 1


def test_writable_home_is_not_read_only(tmp_path):
    from backend.home_access import home_write_problem

    assert home_write_problem(Settings(home=tmp_path / "fresh")) is None
    assert (tmp_path / "fresh").is_dir() and list((tmp_path / "fresh").iterdir()) == []
