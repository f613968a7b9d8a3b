"""The Models tab's handlers against a real API (uvicorn in a thread, tests/unit/conftest.py) that downloads from a
local server speaking the hub's file protocol (tests/hub_server.py): the size before starting, a gated model opened
by a token typed in the form (cleared once sent), progress until the model is listed as downloaded, and the
refusals (offline, disk too small, gated) explained in the page's language. No model is trained."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import gradio as gr
import pytest

from app.pages.models import check_size, fill_from_download, poll_download, refresh_lists, start_download
from app.pages.models_view import downloads_frame, plan_markdown, progress_html
from tests.hub_server import HubServer

REPO = "test-org/tiny"
SECRET = "hf_typed_in_the_form"


@pytest.fixture
def hub_repo(tmp_path) -> Path:
    """A model repository as the hub lists it (the studio only reads config.json and sees the weights file)."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(os.urandom(300_000))
    (folder / "modeling_evil.py").write_text("raise SystemExit")  # never fetched: the studio runs no model code
    return folder


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TUNESMITH_DOWNLOAD_RESERVE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUNESMITH_MODELS_DIR", str(tmp_path / "models"))
    return monkeypatch


def _interactive(update) -> bool:
    return bool(getattr(update, "interactive", None))


def test_download_through_the_tab_lists_the_model(client, hub_repo, hub_env, tmp_path):
    with HubServer({REPO: hub_repo}, gated={REPO: SECRET}) as hub:
        hub_env.setenv("HF_ENDPOINT", hub.url)
        status, start = check_size(client, "en", "  ", "", "huggingface", "")
        assert "Enter a hub model id" in status and not _interactive(start)

        status, start = check_size(client, "zh", REPO, "", "huggingface", "")  # gated, no token
        assert "需要授权" in status and "gated" in status and not _interactive(start)

        status, start = check_size(client, "en", REPO, "main", "huggingface", SECRET)
        assert "3 files" in status and "It fits" in status and _interactive(start)
        assert SECRET not in status

        download_id, timer, status, progress, token_box, start, cancel = start_download(
            client, "en", REPO, "main", "huggingface", SECRET)
        assert timer.active and token_box == "" and not _interactive(start) and _interactive(cancel)
        assert "Downloading" in status and "<progress" in progress

        deadline = time.monotonic() + 60
        while True:
            progress, status, timer, cancel, table, downloads = poll_download(client, "en", download_id)
            if not timer.active:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        installed, start = check_size(client, "en", REPO, "", "huggingface", SECRET)  # here already: nothing to do
        assert "is in this studio already" in installed and not _interactive(start)
    assert "is downloaded as **test-org--tiny**" in status and not _interactive(cancel)
    assert 'value="1.0000"' in progress and "100%" in progress
    row = table[table["Model"] == "test-org--tiny"]
    assert list(row["Kind"]) == [f"downloaded from {REPO}"]
    assert list(downloads["State"]) == ["done"]
    assert not (tmp_path / "models" / "test-org--tiny" / "modeling_evil.py").exists()
    assert SECRET not in (tmp_path / "models" / "test-org--tiny" / ".tunesmith-download.json").read_text()

    models, downloads, follow, timer, source, line = refresh_lists(client, "zh", None)
    assert source.visible is False and [c[1] for c in source.choices] == ["huggingface"]  # ModelScope: no client
    assert line == f"下载来源：Hugging Face: `{hub.url}`。"
    assert f"下载自 {REPO}" in list(models["类型"]) and follow is None and not timer.active  # nothing left to follow


def test_offline_and_a_full_disk_are_explained_and_nothing_starts(client, hub_repo, hub_env):
    with HubServer({REPO: hub_repo}) as hub:
        hub_env.setenv("HF_ENDPOINT", hub.url)
        hub_env.setenv("TUNESMITH_DOWNLOAD_RESERVE_BYTES", str(10**18))
        status, start = check_size(client, "zh", REPO, "", "huggingface", "")
        assert "空间不足" in status and not _interactive(start)
        *_, status, _, _, start, _ = start_download(client, "en", REPO, "", "huggingface", "")
        assert "models disk is too small" in status and not _interactive(start)
        hub_env.delenv("TUNESMITH_DOWNLOAD_RESERVE_BYTES")
        hub_env.setenv("HF_HUB_OFFLINE", "1")
        status, start = check_size(client, "en", REPO, "", "huggingface", "")
        assert "cannot be reached" in status and "offline" in status and not _interactive(start)
        *_, line = refresh_lists(client, "en", None)
        assert line.startswith("⚠ No model hub can be used now: the studio runs offline")
        status, _ = check_size(client, "en", REPO, "", "modelscope", "")
        assert "pip install modelscope" in status
    assert not any(method == "GET" and "/resolve/" in path for method, path, _ in hub.requests)


def test_plan_resume_progress_and_downloads_in_chinese():
    plan = {"repo_id": REPO, "revision": "main", "commit": "abc", "model_id": "test-org--tiny", "files": [{}, {}],
            "total_bytes": 3 * 1024**2, "present_bytes": 1024**2, "needed_bytes": 2 * 1024**2,
            "free_bytes": 10 * 1024**3, "reserve_bytes": 512 * 1024**2, "fits": True}
    text = plan_markdown(plan, "zh")
    assert "之前的下载已取得 1.0 MB" in text and "只需再下载 2.0 MB" in text and "空间足够" in text
    running = {"state": "running", "bytes_done": 1024**2, "bytes_total": 4 * 1024**2, "progress": 0.25,
               "current_file": "model.safetensors", "bytes_per_s": 1024**2, "eta_s": 3}
    bar = progress_html(running, "zh")
    assert 'value="0.2500"' in bar and "25%" in bar and "当前文件：model.safetensors" in bar and "剩余 3" in bar
    frame = downloads_frame([{"repo_id": REPO, "state": "interrupted", "progress": 0.4, "bytes_total": 10}], "zh")
    assert list(frame.columns) == ["仓库模型", "状态", "进度", "开始时间"] and frame.iloc[0]["状态"] == "已中断"
    repo, start = fill_from_download(gr.SelectData(None, {"index": [0, 1], "value": "已中断",
                                                          "row_value": list(frame.iloc[0])}))
    assert repo == REPO and not _interactive(start)  # the size is checked again before it resumes


def test_a_reloaded_page_follows_a_running_download_and_cancel_then_resume(client, hub_repo, hub_env, tmp_path):
    from app.pages.models import cancel_download

    (hub_repo / "model.safetensors").write_bytes(os.urandom(6 * 1024**2))
    with HubServer({REPO: hub_repo}, pause_after={"model.safetensors": 3 * 1024**2}, pause_s=3) as hub:
        hub_env.setenv("HF_ENDPOINT", hub.url)
        download_id, *_ = start_download(client, "en", REPO, "", "huggingface", "")
        _, _, follow, timer, *_ = refresh_lists(client, "en", None)  # a reloaded page picks the running download up
        assert follow == download_id and timer.active
        deadline = time.monotonic() + 30
        while client.get_model_download(download_id)["bytes_done"] < 2 * 1024**2:
            assert time.monotonic() < deadline, "the first megabytes never arrived"
            time.sleep(0.05)
        assert cancel_download(client, "en", download_id) == "Cancelling…"
        while (reply := poll_download(client, "en", download_id))[2].active:
            assert time.monotonic() < deadline + 30, reply[1]
            time.sleep(0.1)
        assert "was cancelled" in reply[1] and "press **Download** again to resume" in reply[1]
        assert reply[5]["State"].iloc[0] == "cancelled"  # the newest download, in the refreshed list

        status, start = check_size(client, "en", REPO, "", "huggingface", "")
        assert "downloaded by an earlier attempt" in status and _interactive(start)
        again, *_ = start_download(client, "en", REPO, "", "huggingface", "")
        while (reply := poll_download(client, "en", again))[2].active:
            assert time.monotonic() < deadline + 60, reply[1]
            time.sleep(0.1)
        ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith("model.safetensors")]
    assert "is downloaded as" in reply[1]
    assert len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes=")  # the second try continued
    assert (tmp_path / "models" / "test-org--tiny" / "model.safetensors").read_bytes() == (
        hub_repo / "model.safetensors").read_bytes()
