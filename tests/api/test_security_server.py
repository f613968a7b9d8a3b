"""A real studio (``python -m backend.cli serve`` subprocess) started with a token: the browser is sent to the
login page, signs in, and the Gradio UI then talks to the API with the token (its header shows the API's
status instead of an authentication error). The API answers 401 without the bearer token."""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.studio import CHROMIUM, CHROMIUM_ARGS, serve_process

TOKEN = "server-test-token-0123456789abcdef"


def serve(tmp_path: Path, env_extra: dict[str, str], timeout_s: float = 120):
    """The studio on a free loopback port with ``env_extra``; yields (base URL, process) once health answers."""
    return serve_process(tmp_path, env_extra, timeout_s)


@pytest.mark.e2e
def test_browser_signs_in_and_the_ui_reaches_the_api_with_the_token(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    with serve(tmp_path, {"TUNESMITH_TOKEN": TOKEN}) as (base, _):
        assert httpx.get(f"{base}/api/v1/jobs").status_code == 401
        assert httpx.get(f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(base + "/")
            assert page.url.endswith("/login")
            page.fill("#token", "wrong-token")
            page.click("button[type=submit]")
            page.wait_for_selector("text=not the access token")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#app-header >> text=API ok", timeout=60_000)
            assert TOKEN not in page.url
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["tunesmith_session"]["httpOnly"] and TOKEN not in cookies["tunesmith_session"]["value"]
            browser.close()


def peak_rss_mb(pid: int) -> float:
    """The process's resident-memory high-water mark (VmHWM) so far, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def write_json_array(path: Path, target_bytes: int) -> int:
    """A .json array of alpaca records, about ``target_bytes`` long; returns how many records."""
    record = json.dumps({"instruction": "Summarize the paragraph in one sentence. " * 4,
                         "input": "The quick brown fox jumps over the lazy dog. " * 12,
                         "output": "A fox jumps over a dog, several times. " * 6})
    count = target_bytes // (len(record) + 2)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for start in range(0, count, 10_000):
            n = min(10_000, count - start)
            fh.write(",\n".join([record] * n) + (",\n" if start + n < count else "\n"))
        fh.write("]\n")
    return count


def raw_post_status(base: str, path: str, content_length: int, first_bytes: bytes) -> tuple[int, bytes]:
    """POST with a declared Content-Length but only ``first_bytes`` sent: the status and body the server
    answers with before the rest arrives."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {content_length}\r\n\r\n".encode() + first_bytes)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


UPLOAD_MB = 200  # a modest stand-in for the 500 MB, sized for a shared CI machine
RSS_LIMIT_MB = 600


def test_server_memory_stays_bounded_through_a_zip_bomb_a_big_upload_and_a_huge_json_body(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("one-line.jsonl", "w", force_zip64=True) as member:
            chunk = b"a" * (1 << 20)
            for _ in range(1024):  # one 1 GiB line, about 1 MB zipped
                member.write(chunk)
    assert bomb.stat().st_size < 2 * 1024 * 1024
    big = tmp_path / "big.json"
    rows = write_json_array(big, UPLOAD_MB * 1024 * 1024)

    with serve(tmp_path, {"TUNESMITH_MAX_JSON_BYTES": str(1024 * 1024)}) as (base, proc):
        with httpx.Client(base_url=base, timeout=600) as client:
            start_mb = peak_rss_mb(proc.pid)
            with bomb.open("rb") as fh:
                refused = client.post("/api/v1/datasets", files={"file": ("bomb.zip", fh)})
            assert refused.status_code == 413 and "times its compressed size" in refused.text
            after_bomb = peak_rss_mb(proc.pid)

            status, body = raw_post_status(base, "/api/v1/jobs/preview", 200 * 1024 * 1024, b'{"base_model": "')
            assert status == 413 and b"TUNESMITH_MAX_JSON_BYTES" in body and len(body) < 2000

            with big.open("rb") as fh:
                created = client.post("/api/v1/datasets", files={"file": ("big.json", fh)}, data={"name": "big"})
            assert created.status_code == 201, created.text[:500]
            assert created.json()["num_rows"] == rows
            peak = peak_rss_mb(proc.pid)
    print(f"server peak RSS: {start_mb:.0f} MB at start, {after_bomb:.0f} MB after the zip bomb, {peak:.0f} MB after "
          f"the {UPLOAD_MB} MB .json upload ({rows} records)")
    assert peak < RSS_LIMIT_MB
