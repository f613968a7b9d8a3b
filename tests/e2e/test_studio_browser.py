"""End to end in a real browser: upload a dataset, train a tiny LoRA, watch it, download the adapter, chat.

Starts the real studio (``python -m backend.cli serve``: API at /api/v1, UI at /) as a subprocess on a
free port, with its state and a tiny random-init model in ``tmp_path``, and drives it with Playwright's
headless Chromium. Screenshots land in ``test-artifacts/`` at the repository root.

    pytest -m e2e tests/e2e            # needs playwright (python) and Chromium at /usr/bin/chromium
    TUNESMITH_CHROMIUM=/path/to/chrome pytest -m e2e tests/e2e
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.studio import CHROMIUM_ARGS, serve_studio, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

TRAIN_TIMEOUT_S = 180
DATASET_NAME = "e2e-sums"


def _write_alpaca(path: Path, n: int = 16) -> Path:
    """Short alpaca records: each fits in cutoff_len=64 with the tiny tokenizer (about 40 tokens)."""
    records = [
        {"instruction": f"What is {a} plus {a + 3}?", "input": "", "output": f"{a} plus {a + 3} is {2 * a + 3}."}
        for a in range(n)
    ]
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[str]:
    """The real studio with a tiny random-init model; yields its base URL."""
    from tests.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "models" / "tiny-llama")
    with serve_studio(tmp_path, tmp_path / "models") as base:
        yield base


def _pick(page, elem_id: str, text: str) -> None:
    """Choose the option containing ``text`` in the gr.Dropdown with ``elem_id``."""
    page.click(f"#{elem_id} input")
    page.locator("ul[role=listbox] li", has_text=text).first.click()
    page.keyboard.press("Escape")


def _fill(page, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    field.fill(value)
    field.press("Tab")


def test_upload_train_watch_export(studio: str, chromium_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=f"{studio}/api/v1", timeout=10)
    dataset_file = _write_alpaca(tmp_path / "sums_alpaca.json")
    started = time.monotonic()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(30_000)
        try:
            # -- Datasets: upload, see the API's answer and the preview ------------------------------
            page.goto(studio + "/")
            page.wait_for_selector("#ds-upload")
            page.set_input_files("#ds-file input[type=file]", str(dataset_file))
            expect(page.locator("#ds-file")).to_contain_text(dataset_file.stem)  # uploaded, listed
            _fill(page, "ds-name", DATASET_NAME)
            page.click("#ds-upload")
            expect(page.locator("#ds-status")).to_contain_text("Registered", timeout=30_000)
            expect(page.locator("#ds-status")).to_contain_text("alpaca")
            expect(page.locator("#ds-table")).to_contain_text(DATASET_NAME)
            expect(page.locator("#ds-preview")).to_contain_text("What is 0 plus 3?")
            datasets = {d["name"]: d for d in api.get("/datasets").json()["data"]}
            assert datasets[DATASET_NAME]["num_rows"] == 16
            shot(page, "e2e-datasets.png")
            # a personalized copy of the identity demo
            page.locator("#ds-identity").get_by_text("Identity demo").click()
            _fill(page, "ds-identity-name", "Ada")
            _fill(page, "ds-identity-author", "Acme Labs")
            page.click("#ds-identity-create")
            expect(page.locator("#ds-identity-status")).to_contain_text("identity-ada", timeout=30_000)
            expect(page.locator("#ds-preview")).to_contain_text("I am Ada, an AI assistant developed by Acme Labs")

            # -- Train: tiny model + that dataset + LoRA, 6 steps ------------------------------------
            page.get_by_role("tab", name="Train").click()
            expect(page.locator("#train-model")).to_be_visible()
            _pick(page, "train-model", "tiny-llama")
            expect(page.locator("#train-model-hint")).to_contain_text("Suggested here: LoRA r 8")
            _pick(page, "train-datasets", DATASET_NAME)
            page.locator("#train-method label", has_text="LoRA").first.click()
            _fill(page, "train-max-steps", "6")
            _fill(page, "train-per-device-batch-size", "2")
            _fill(page, "train-gradient-accumulation-steps", "1")
            _fill(page, "train-cutoff-len", "64")
            page.click("#train-preview")
            expect(page.locator("#train-status")).to_contain_text("Valid run config")
            page.click("#train-start")
            expect(page.locator("#train-status")).to_contain_text("Started run", timeout=30_000)
            shot(page, "e2e-train.png")
            jobs = api.get("/jobs").json()["data"]
            assert len(jobs) == 1, jobs
            job_id = jobs[0]["id"]
            config = jobs[0]["config"]
            assert config["base_model"] == "tiny-llama"
            assert config["datasets"] == [datasets[DATASET_NAME]["id"]]
            assert config["method"]["name"] == "lora"
            assert (config["max_steps"], config["per_device_batch_size"]) == (6, 2)
            assert (config["gradient_accumulation_steps"], config["cutoff_len"]) == (1, 64)
            expect(page.locator("#train-status")).to_contain_text(job_id)

            # -- Runs: select the job, wait for a live loss curve and success ------------------------
            page.get_by_role("tab", name="Runs").click()
            expect(page.locator("#runs-table")).to_contain_text(job_id)
            _pick(page, "runs-job", job_id)
            deadline = time.monotonic() + TRAIN_TIMEOUT_S
            job = api.get(f"/jobs/{job_id}").json()
            metrics_count = 0
            while time.monotonic() < deadline:
                job = api.get(f"/jobs/{job_id}").json()
                metrics_count = api.get(f"/jobs/{job_id}/metrics").json()["count"]
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(1.0)
            if job["state"] != "succeeded":
                shot(page, "e2e-runs-failed.png")
                logs = api.get(f"/jobs/{job_id}/logs", params={"tail": 60}).json()["text"]
                pytest.fail(f"job ended as {job['state']!r}: {job.get('error')} / {job.get('hint')}\n{logs}")
            assert metrics_count >= 2, f"only {metrics_count} metric rows"
            expect(page.locator("#runs-status")).to_contain_text("succeeded", timeout=15_000)
            # The loss chart draws one point per logged loss and a line through them, on whole-number step
            # ticks; grad norm and learning rate are charted beside it (no GPU memory chart on a CPU).
            loss_chart = page.locator('#loss-plot [data-chart="loss"]')
            points = loss_chart.locator("circle.ts-point")
            expect(points.nth(1)).to_be_attached(timeout=15_000)
            assert points.count() >= 2
            assert re.search(r"\d", loss_chart.locator("path.ts-line").first.get_attribute("d") or ""), "no loss line"
            ticks = loss_chart.locator(".ts-x-tick").all_text_contents()
            assert ticks and all(tick.isdigit() for tick in ticks), ticks
            expect(page.locator('#loss-plot [data-chart="grad_norm"]')).to_contain_text("Gradient norm")
            expect(page.locator('#loss-plot [data-chart="lr"]')).to_contain_text("Learning rate")
            expect(page.locator('#loss-plot [data-chart="gpu_mem"]')).to_have_count(0)
            expect(page.locator("#runs-logs textarea")).not_to_have_value("")
            shot(page, "e2e-runs.png")
            # Lineage: the dataset it trained on, with the hash of its data; no parent; no export yet
            page.locator("#runs-lineage").get_by_text("Lineage").first.click()
            lineage = page.locator("#runs-lineage-view")
            expect(lineage).to_contain_text(DATASET_NAME, timeout=15_000)
            expect(lineage).to_contain_text("sha256")
            expect(lineage).to_contain_text("a fresh start from the base model")

            # -- Continue training: the finished run opens Train, filled from it, with the parent set ----------
            page.click("#runs-continue")
            expect(page.locator("#train-config-status")).to_contain_text(f"Continuing run {job_id}", timeout=30_000)
            expect(page.locator("#train-config-status")).to_contain_text("The API accepts this config")
            expect(page.locator("#train-max-steps input, #train-max-steps textarea").first).to_have_value("6")
            page.click("#train-preview")
            expect(page.locator("#train-config")).to_contain_text(f'"init_from_run": "{job_id}"', timeout=15_000)

            # -- Train again: "Start from…" the finished run fills the form with its settings ---------------
            page.get_by_role("tab", name="Train").click()
            _fill(page, "train-max-steps", "9")
            _fill(page, "train-cutoff-len", "128")
            _pick(page, "train-start-from", job_id)
            expect(page.locator("#train-config-status")).to_contain_text("Filled the form from run", timeout=15_000)
            expect(page.locator("#train-config-status")).to_contain_text("The API accepts this config")
            expect(page.locator("#train-max-steps input, #train-max-steps textarea").first).to_have_value("6")
            expect(page.locator("#train-cutoff-len input").first).to_have_value("64")

            # -- Export: download the adapter zip ----------------------------------------------------
            page.get_by_role("tab", name="Export").click()
            _pick(page, "export-job", job_id)
            expect(page.locator("#export-summary")).to_contain_text(job_id)
            page.click("#adapter-prepare")
            download_button = page.locator("#adapter-download")
            expect(download_button).to_be_visible(timeout=60_000)
            with page.expect_download() as download_info:
                download_button.click()
            zip_path = tmp_path / "adapter.zip"
            download_info.value.save_as(zip_path)
            with zipfile.ZipFile(zip_path) as zf:
                names = {Path(n).name for n in zf.namelist()}
            assert {"adapter_config.json", "adapter_model.safetensors"} <= names, names
            expect(page.locator("#adapter-files")).to_contain_text("adapter_model.safetensors")
            shot(page, "e2e-export.png")

            # -- Chat: the trained adapter answers, streamed into the conversation ---------------------
            page.get_by_role("tab", name="Chat").click()
            page.click("#chat-refresh")
            _pick(page, "chat-target", job_id)
            _fill(page, "chat-input", "What is 2 plus 5?")
            page.click("#chat-send")
            expect(page.locator("#chatbot")).to_contain_text("What is 2 plus 5?")
            expect(page.locator("#chat-status")).to_contain_text("tokens in", timeout=120_000)
            expect(page.locator("#chat-status")).to_contain_text("adapter")
            shot(page, "e2e-chat.png")

            # -- Evaluate: the run beside its base model; rows it trained on are flagged; replies on screen ---
            page.get_by_role("tab", name="Evaluate").click()
            _pick(page, "eval-target", job_id)
            _pick(page, "eval-dataset", DATASET_NAME)
            expect(page.locator("#eval-with-base input")).to_be_checked()
            _fill(page, "eval-samples", "3")
            _fill(page, "eval-max-new-tokens", "4")
            page.click("#eval-start")
            metrics = page.locator("#eval-metrics")
            expect(metrics).to_contain_text("Run vs base model", timeout=180_000)
            expect(metrics).to_contain_text("These rows were in the training data: 3 of the 3 rows")
            table = page.locator("#eval-predictions")
            expect(table).to_contain_text("prediction (base model)")
            expect(table).to_contain_text("What is 0 plus 3?")
            headers, frame = table.locator("th"), table.bounding_box()
            boxes = [headers.nth(i).bounding_box() for i in range(headers.count())]
            assert frame and boxes and all(b and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1
                                           for b in boxes), (frame, boxes)  # every column on screen, none cut
            shot(page, "e2e-evaluate.png")
        except Exception:
            shot(page, "e2e-failure.png")
            raise
        finally:
            browser.close()
            api.close()
    print(f"e2e flow took {time.monotonic() - started:.1f} s")
