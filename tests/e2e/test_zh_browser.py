"""The studio in Chinese, end to end in a real browser (issue 12): ``/?lang=zh`` shows every tab in Chinese
(Gradio's own strings too), a dataset is uploaded, ✨ suggested settings are applied before any dataset is picked,
a tiny LoRA trains, its curve is drawn, the run buttons follow its state, the adapter downloads, a chat reply is
stopped mid-way and the input comes back, and the header switch flips the page to English live.

Screenshots of both languages go to ``test-artifacts/screenshot-{zh,en}.png`` (copied to ``docs/`` by hand; Chinese
text needs a CJK font on the browser's machine: Debian ``fonts-wqy-microhei`` or ``fonts-noto-cjk``).
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.studio import CHROMIUM_ARGS, shot
from tests.e2e.test_studio_browser import TRAIN_TIMEOUT_S, _fill, _pick, _write_alpaca, studio  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

DATASET_NAME = "中文-sums"
TABS_ZH = ["数据集", "模型", "训练", "运行", "导出", "评估", "对话"]
TABS_EN = ["Datasets", "Models", "Train", "Runs", "Export", "Evaluate", "Chat"]


def _tab_names(page) -> list[str]:
    return [name.strip() for name in page.get_by_role("tab").all_inner_texts()]


def _wait_state(api: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.5)
    pytest.fail(f"{job_id} did not reach {states} within {timeout} s: {job}")


def test_upload_train_curve_download_in_chinese(studio: str, chromium_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=f"{studio}/api/v1", timeout=10)
    dataset_file = _write_alpaca(tmp_path / "sums_alpaca.json")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        # An English browser: the URL's ?lang=zh wins over the browser's language.
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="en-US")
        page.set_default_timeout(30_000)
        try:
            page.goto(studio + "/?lang=zh")
            page.wait_for_selector("#ds-upload")
            expect(page.get_by_role("tab").first).to_have_text("数据集")
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            assert _tab_names(page) == TABS_ZH
            expect(page.locator("#ds-upload")).to_have_text("上传数据集")
            expect(page.locator("#ds-file")).to_contain_text("点击上传")  # Gradio's own string, in Chinese too
            expect(page.locator("#lang-switch input[value=zh]")).to_be_checked()
            expect(page.locator("#app-header")).to_contain_text("在浏览器中微调语言模型")

            # -- 数据集: upload ------------------------------------------------------------------------------
            page.set_input_files("#ds-file input[type=file]", str(dataset_file))
            expect(page.locator("#ds-file")).to_contain_text(dataset_file.stem)
            _fill(page, "ds-name", DATASET_NAME)
            page.click("#ds-upload")
            expect(page.locator("#ds-status")).to_contain_text("已注册", timeout=30_000)
            expect(page.locator("#ds-table")).to_contain_text("格式")  # table headers in Chinese
            expect(page.locator("#ds-preview")).to_contain_text("样本 1")

            # -- 训练: ✨ suggested settings before any dataset, then the dataset, then start ----------------
            page.get_by_role("tab", name="训练").click()
            _pick(page, "train-model", "tiny-llama")
            expect(page.locator("#train-model-hint")).to_contain_text("本机推荐")
            _pick(page, "train-start-from", "✨")
            expect(page.locator("#train-config-status")).to_contain_text("已用", timeout=30_000)
            expect(page.locator("#train-start")).to_be_enabled()
            assert page.locator(".error").count() == 0  # no field turned into an error badge
            expect(page.locator("#train-lora-rank")).to_contain_text("LoRA 秩")
            _pick(page, "train-stage", "grpo")  # stage grpo: its settings and the rewards editor, in Chinese
            expect(page.locator("#train-grpo-group >> visible=true").first).to_contain_text("每个提示的回复数")
            expect(page.locator("#train-reward-add")).to_contain_text("添加奖励")
            _pick(page, "train-stage", "sft")
            _pick(page, "train-datasets", DATASET_NAME)
            _fill(page, "train-max-steps", "8")
            _fill(page, "train-per-device-batch-size", "2")
            _fill(page, "train-gradient-accumulation-steps", "1")
            _fill(page, "train-cutoff-len", "64")
            _fill(page, "train-logging-steps", "1")
            page.click("#train-start")
            expect(page.locator("#train-status")).to_contain_text("已开始运行", timeout=30_000)
            job_id = api.get("/jobs").json()["data"][0]["id"]
            shot(page, "e2e-zh-train.png")

            # -- 运行: opens on the running run; buttons follow its state; a curve is drawn -----------------
            page.get_by_role("tab", name="运行").click()
            expect(page.locator("#runs-job input")).to_have_value(re.compile(re.escape(job_id)), timeout=15_000)
            job = _wait_state(api, job_id, ("running", "succeeded", "failed"), 60)
            if job["state"] == "running":
                expect(page.locator("#runs-resume")).to_be_disabled()
            job = _wait_state(api, job_id, ("succeeded", "failed", "cancelled"), TRAIN_TIMEOUT_S)
            assert job["state"] == "succeeded", job
            expect(page.locator("#runs-status")).to_contain_text("已完成", timeout=15_000)
            expect(page.locator("#runs-stop")).to_be_disabled()
            expect(page.locator("#runs-cancel")).to_be_disabled()
            expect(page.locator("#runs-resume")).to_be_disabled()
            expect(page.locator("#runs-open-export")).to_be_visible()
            points = page.locator('#loss-plot [data-chart="loss"] circle.ts-point')
            expect(points.nth(1)).to_be_attached(timeout=15_000)
            expect(page.locator("#loss-plot")).to_contain_text("训练损失")
            expect(page.locator('#loss-plot [data-chart="grad_norm"]')).to_contain_text("梯度范数")
            shot(page, "e2e-zh-runs.png")
            shot(page, "screenshot-zh.png")

            # -- 导出 (from the run's shortcut): download the adapter ---------------------------------------
            page.click("#runs-open-export")
            expect(page.locator("#export-summary")).to_contain_text(job_id, timeout=15_000)
            page.click("#adapter-prepare")
            download_button = page.locator("#adapter-download")
            expect(download_button).to_be_visible(timeout=60_000)
            with page.expect_download() as download_info:
                download_button.click()
            zip_path = tmp_path / "adapter.zip"
            download_info.value.save_as(zip_path)
            with zipfile.ZipFile(zip_path) as zf:
                assert "adapter_model.safetensors" in {Path(n).name for n in zf.namelist()}

            # -- 对话: the input is locked while a reply streams; Stop keeps the reply and unlocks it ------
            page.get_by_role("tab", name="对话").click()
            page.click("#chat-refresh")
            _pick(page, "chat-target", job_id)
            _fill(page, "chat-max-tokens", "400")
            _fill(page, "chat-input", "What is 2 plus 5?")
            page.click("#chat-send")
            # Locked at once (the first reply also loads the model): nothing typed now can be lost.
            expect(page.locator("#chat-stop")).to_be_visible(timeout=60_000)
            expect(page.locator("#chat-input textarea")).to_be_disabled()
            expect(page.locator("#chat-send")).to_be_disabled()
            page.click("#chat-stop")
            expect(page.locator("#chat-status")).to_contain_text("已停止", timeout=120_000)  # after the model loads
            expect(page.locator("#chat-input textarea")).to_be_enabled()
            _fill(page, "chat-max-tokens", "8")
            _fill(page, "chat-input", "And 3 plus 4?")
            page.click("#chat-send")
            expect(page.locator("#chat-status")).to_contain_text("回答", timeout=120_000)
            expect(page.locator("#chatbot")).to_contain_text("What is 2 plus 5?")
            expect(page.locator("#chatbot")).to_contain_text("And 3 plus 4?")

            # -- the header switch: English, live, and remembered --------------------------------------------
            page.get_by_role("tab", name="运行").click()
            page.locator("#lang-switch label", has_text="English").click()
            expect(page.locator("#runs-intro")).to_contain_text("Every run", timeout=30_000)  # flips in the browser
            expect(page.get_by_role("tab").first).to_have_text("Datasets", timeout=30_000)  # tab buttons: a round trip
            assert _tab_names(page) == TABS_EN
            expect(page.locator("#runs-status")).to_contain_text("succeeded", timeout=15_000)
            expect(page.locator("html")).to_have_attribute("lang", "en")
            assert "lang=en" in page.url  # the URL named a language: it now names the chosen one
            shot(page, "screenshot-en.png")
            page.goto(studio + "/")
            expect(page.get_by_role("tab").first).to_have_text("Datasets")
        except Exception:
            shot(page, "e2e-zh-failure.png")
            raise
        finally:
            browser.close()
            api.close()
