"""End to end in a real browser: upload zips of several data files on the Datasets tab, one of every format.

A zip holding an alpaca .json and a messages .jsonl registers both (each with its format and row count); a zip
with one malformed file shows that file's line-level error and registers nothing. Starts the real studio
(no model needed) like test_studio_browser.py and drives it with headless Chromium; screenshots land in
``test-artifacts/``.

    pytest -m e2e tests/e2e/test_datasets_browser.py
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.studio import CHROMIUM_ARGS, serve_studio, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

ALPACA = [{"instruction": f"Add {a} and {a + 1}.", "input": "", "output": f"{2 * a + 1}"} for a in range(5)]
CHAT = [{"messages": [{"role": "user", "content": f"Say hi to {n}"}, {"role": "assistant", "content": f"Hi {n}!"}]}
        for n in ("Ann", "Bo", "Cy")]


SHAREGPT = [{"conversations": [{"from": "human", "value": f"hi {i}"}, {"from": "gpt", "value": f"hello {i}"}]}
            for i in range(3)]
PREFERENCE = [{"instruction": f"Say {w}", "input": "", "chosen": f"{w}!", "rejected": "no"} for w in ("yes", "ok")]
KTO = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
        "label": i % 2 == 0} for i in range(4)]
TOOLS = [{"messages": [{"role": "user", "content": "Weather in Oslo?"},
                       {"role": "assistant", "content": "", "tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
                       {"role": "tool", "content": '{"temp": 3}'}, {"role": "assistant", "content": "3 degrees."}],
          "tools": [{"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}]
# file -> (dataset name, detected format, rows): every format the studio takes, through the browser in one zip
EVERY_KIND = {"share.json": ("share", "sharegpt", 3), "pref.jsonl": ("pref", "preference", 2),
              "kto.jsonl": ("kto", "kto", 4), "tools.jsonl": ("tools", "messages", 1),
              "notes.txt": ("notes", "text", 3), "qa.csv": ("qa", "alpaca", 3), "facts.parquet": ("facts", "alpaca", 2)}


def _every_kind_zip(path: Path) -> Path:
    import pandas as pd

    parquet = path.with_suffix(".parquet")
    pd.DataFrame([{"instruction": "Capital of France?", "output": "Paris"}, {"instruction": "2+2?", "output": "4"}]
                 ).to_parquet(parquet)
    files = {"share.json": json.dumps(SHAREGPT), "pref.jsonl": _jsonl(PREFERENCE), "kto.jsonl": _jsonl(KTO),
             "tools.jsonl": _jsonl(TOOLS), "notes.txt": "One doc.\n\nTwo doc,\nwrapped.\n\nThree doc.\n",
             "qa.csv": "instruction,output\nA?,a\nB?,b\nC?,c\n"}
    _zip(path, files)
    with zipfile.ZipFile(path, "a") as zf:
        zf.write(parquet, "facts.parquet")
    return path


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[str]:
    """The real studio with an empty model folder; yields its base URL."""
    (tmp_path / "models").mkdir()
    with serve_studio(tmp_path, tmp_path / "models") as base:
        yield base


def _options(page, elem_id: str) -> list[str]:
    """The option texts the gr.Dropdown ``elem_id`` offers now."""
    page.click(f"#{elem_id} input")
    options = page.locator("ul[role=listbox] li")
    options.first.wait_for()
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def _train_form_follows_the_stage(page) -> None:
    """On Train with every kind registered: stage dpo offers only preference datasets and drops a chat dataset
    picked before (with a note); stage grpo shows its settings and the rewards editor, which adds a regex reward;
    fp16 is marked as refused on this CPU machine, with the backend's reason."""
    from playwright.sync_api import expect

    from tests.e2e.test_studio_browser import _pick

    page.get_by_role("tab", name="Train").click()
    _pick(page, "train-datasets", "qa")
    _pick(page, "train-stage", "dpo")
    expect(page.locator("#train-stage-note")).to_contain_text("qa")
    offered = _options(page, "train-datasets")
    assert offered and all("preference" in text for text in offered), offered
    assert any(text.startswith("pref") for text in offered), offered
    shown = {group: page.locator(f"#train-{group}-group >> visible=true") for group in ("preference", "grpo")}
    expect(shown["preference"].first).to_be_visible()
    expect(shown["grpo"]).to_have_count(0)
    page.click("#train-compute-type input")  # fp16 marked and greyed, with the backend's reason under the field
    refused = page.locator("ul[role=listbox] li", has_text="not on this machine")
    expect(refused).to_have_count(1)
    assert float(refused.evaluate("el => getComputedStyle(el).opacity")) < 0.6
    page.keyboard.press("Escape")
    expect(page.locator("#train-compute-type")).to_contain_text("fp16 needs a CUDA GPU")
    _pick(page, "train-stage", "grpo")
    expect(shown["grpo"].first).to_be_visible()
    expect(shown["preference"]).to_have_count(0)
    assert not any("raw text" in text for text in _options(page, "train-datasets"))
    _pick(page, "train-reward-kind", "regex")
    page.locator("#train-reward-pattern input, #train-reward-pattern textarea").first.fill("^[0-9]+$")
    page.click("#train-reward-add")
    expect(page.locator("#train-grpo-rewards")).to_contain_text("^[0-9]+$")
    shot(page, "e2e-train-grpo-rewards.png")


def test_zip_of_several_files_uploads_each_or_none(studio: str, chromium_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    good = _zip(tmp_path / "pair.zip", {"sums.json": json.dumps(ALPACA), "greetings.jsonl": _jsonl(CHAT)})
    bad = _zip(tmp_path / "broken.zip", {"more_sums.json": json.dumps(ALPACA),
                                         "broken_chat.jsonl": _jsonl(CHAT[:1]) + '{"messages": [\n'})
    api = httpx.Client(base_url=f"{studio}/api/v1", timeout=10)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        try:
            page.goto(studio + "/")
            page.wait_for_selector("#ds-upload")
            status = page.locator("#ds-status")

            page.set_input_files("#ds-file input[type=file]", str(good))
            expect(page.locator("#ds-file")).to_contain_text("pair")  # gradio splits stem and .zip
            page.click("#ds-upload")
            expect(status).to_contain_text("Registered 2 datasets", timeout=30_000)  # a loaded CI box is slow
            for name, fmt, rows in (("sums", "alpaca", "5"), ("greetings", "messages", "3")):
                row = status.locator("tr", has_text=name)
                expect(row).to_contain_text(fmt)
                expect(row.locator("td").nth(2)).to_have_text(rows)
                expect(page.locator("#ds-table")).to_contain_text(name)
            registered = {d["name"]: (d["format"], d["num_rows"]) for d in api.get("/datasets").json()["data"]}
            assert registered["sums"] == ("alpaca", 5) and registered["greetings"] == ("messages", 3)
            shot(page, "e2e-datasets-zip.png")

            page.set_input_files("#ds-file input[type=file]", str(bad))
            expect(page.locator("#ds-file")).to_contain_text("broken")
            page.click("#ds-upload")
            expect(status).to_contain_text("nothing was registered")
            expect(status).to_contain_text("broken_chat.jsonl line 2: not valid JSON")
            shot(page, "e2e-datasets-zip-rejected.png")
            after = {d["name"] for d in api.get("/datasets").json()["data"]}
            assert after == set(registered), after - set(registered)

            page.locator("#ds-file button[aria-label='Clear']").click()  # a rejected file stays for a retry
            page.set_input_files("#ds-file input[type=file]", str(_every_kind_zip(tmp_path / "kinds.zip")))
            expect(page.locator("#ds-file")).to_contain_text("kinds")
            page.click("#ds-upload")
            expect(status).to_contain_text(f"Registered {len(EVERY_KIND)} datasets")
            for name, fmt, rows in EVERY_KIND.values():
                row = status.locator("tr", has_text=name).first
                expect(row).to_contain_text(fmt)
                expect(row.locator("td").nth(2)).to_have_text(str(rows))
            registered = {d["name"]: (d["format"], d["num_rows"]) for d in api.get("/datasets").json()["data"]}
            assert {name: registered[name] for name, _f, _r in EVERY_KIND.values()} == {
                name: (fmt, rows) for name, fmt, rows in EVERY_KIND.values()}
            shot(page, "e2e-datasets-every-kind.png")
            _map_columns_in_the_form(page, expect, tmp_path)
            _train_form_follows_the_stage(page)
        except Exception:
            shot(page, "e2e-datasets-zip-failure.png")
            raise
        finally:
            browser.close()
            api.close()


def _map_columns_in_the_form(page, expect, tmp_path: Path) -> None:
    """Issue 12 group 8: a file with other field names is refused once, naming the problem once; the hint opens
    the column-mapping form, which lists the file's columns; picking two of them registers the file."""
    qa = tmp_path / "qa_pairs.json"
    qa.write_text(json.dumps([{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(3)]), encoding="utf-8")
    status = page.locator("#ds-status")  # the last upload succeeded, so the file box is empty again
    page.set_input_files("#ds-file input[type=file]", str(qa))
    expect(page.locator("#ds-file")).to_contain_text("qa_pairs")
    page.click("#ds-upload")
    expect(status).to_contain_text("nothing was registered", timeout=30_000)
    assert status.inner_text().count("unknown dataset format") == 1  # printed once, not three times
    expect(page.locator("#ds-col-prompt")).to_be_visible()  # the hint opened the form, listing the file's columns
    expect(page.locator("#ds-columns-found")).to_contain_text("`question`, `answer`".replace("`", ""))
    for key, column in (("prompt", "question"), ("response", "answer")):
        page.click(f"#ds-col-{key} input")
        page.locator("ul[role=listbox] li", has_text=column).first.click()
        page.keyboard.press("Escape")
    page.click("#ds-upload")
    expect(status).to_contain_text("Registered", timeout=30_000)
    expect(status).to_contain_text("qa_pairs")
    shot(page, "e2e-datasets-column-form.png")
