"""The Models tab, the dark-mode switch and a 420 px wide screen, in a real browser against the real studio
(issue 15 item 1, issue 12 group 9). The studio downloads from a local server speaking the hub's file protocol
(tests/hub_server.py, a gated repository opened by a token typed in the form); nothing is trained.

- Models: the size is shown before Download is possible; the download runs with progress, the token box is
  cleared, the model is listed as downloaded and appears in the Train tab's base models.
- Dark mode: the header switch turns Gradio's dark theme on, survives a reload (localStorage), and the primary
  buttons and help text keep WCAG AA contrast (4.5:1) there too.
- 420 × 900: every tab button is on screen (no "⋯" menu), and the Runs chart and log are stacked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.studio import CHROMIUM_ARGS, serve_process, shot
from tests.e2e.test_studio_browser import _pick  # noqa: F401
from tests.hub_server import HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

REPO = "test-org/tiny-llama"
MODEL_ID = "test-org--tiny-llama"
SECRET = "hf_gated_in_the_browser"
TABS_EN = ["Datasets", "Models", "Train", "Runs", "Export", "Evaluate", "Chat"]

# WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST_JS = """(el) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + .055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || [255, 255, 255];
  const fg = rgb(getComputedStyle(el).color);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


@pytest.fixture
def hub_studio(tmp_path: Path) -> Iterator[tuple[str, HubServer]]:
    """The real studio (no models of its own) and a hub server holding a gated tiny model."""
    from tests.tiny_model import build_tiny_model

    repo = build_tiny_model(tmp_path / "hub" / "tiny-llama")
    (tmp_path / "models").mkdir()
    with HubServer({REPO: repo}, gated={REPO: SECRET}) as hub:
        env = {"TUNESMITH_MODELS_DIR": str(tmp_path / "models"), "HF_ENDPOINT": hub.url, "HF_TOKEN": "",
               "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_OFFLINE": "0"}
        with serve_process(tmp_path, env) as (base, _):
            yield base, hub


def _fill(page, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    field.fill(value)
    field.press("Tab")


def test_download_a_model_in_the_models_tab_then_dark_mode_and_a_narrow_screen(hub_studio, chromium_path: Path):
    from playwright.sync_api import expect, sync_playwright

    studio, hub = hub_studio
    expect.set_options(timeout=30_000)  # a page reload on a busy 2-core box takes more than the default 5 s
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        page.set_default_timeout(30_000)
        try:
            page.goto(studio + "/?lang=en")
            page.get_by_role("tab", name="Models").click()
            expect(page.locator("#models-table")).to_be_visible()
            expect(page.locator("#models-sources")).to_contain_text(hub.url)  # where downloads come from
            expect(page.locator("#models-source")).to_be_hidden()  # one usable hub: no choice to make
            _fill(page, "models-repo", REPO)
            page.click("#models-plan")
            expect(page.locator("#models-status")).to_contain_text("gated or private")  # no token yet
            expect(page.locator("#models-start")).to_be_disabled()
            _fill(page, "models-token", SECRET)
            page.click("#models-plan")
            expect(page.locator("#models-status")).to_contain_text("It fits")
            expect(page.locator("#models-status")).to_contain_text(MODEL_ID)
            expect(page.locator("#models-start")).to_be_enabled()
            page.click("#models-start")
            expect(page.locator("#models-status")).to_contain_text(f"is downloaded as {MODEL_ID}", timeout=60_000)
            expect(page.locator("#models-token input")).to_have_value("")  # the token is not kept on the page
            expect(page.locator("#models-progress progress")).to_have_attribute("value", "1.0000")
            expect(page.locator("#models-table")).to_contain_text(f"downloaded from {REPO}")
            assert SECRET not in page.content()
            # the recent downloads: a row picked fills the form again (to resume an unfinished one)
            _fill(page, "models-repo", "")
            page.locator("#models-downloads-box").get_by_text("Recent downloads").click()
            page.locator("#models-downloads [role=gridcell]", has_text=REPO).first.click()
            expect(page.locator("#models-repo textarea, #models-repo input").first).to_have_value(REPO)
            shot(page, "e2e-models.png")

            page.get_by_role("tab", name="Train").click()
            page.click("#train-model input")
            expect(page.locator("ul[role=listbox] li", has_text=MODEL_ID).first).to_be_visible()
            page.keyboard.press("Escape")

            # -- dark mode: the header switch, remembered, contrast kept ----------------------------------
            page.get_by_role("tab", name="Models").click()
            expect(page.locator("body")).not_to_have_class("dark")
            page.locator("#theme-switch input").check()
            expect(page.locator("body")).to_have_class("dark")
            page.reload()
            expect(page.locator("body")).to_have_class("dark")
            expect(page.locator("#theme-switch input")).to_be_checked()
            ratios = {"primary button": page.locator("#ds-upload").evaluate(CONTRAST_JS)}
            page.get_by_role("tab", name="Models").click()
            ratios["help text"] = page.get_by_text("As on the model's hub page").evaluate(CONTRAST_JS)
            ratios["subdued header"] = page.locator("#app-header p").evaluate(CONTRAST_JS)
            print("dark-mode contrast:", ratios)
            shot(page, "e2e-dark.png")
            assert all(ratio >= 4.5 for ratio in ratios.values()), ratios
            page.locator("#theme-switch input").uncheck()
            page.reload()
            expect(page.locator("body")).not_to_have_class("dark")
            expect(page.locator("#theme-switch input")).not_to_be_checked()
            light_header = page.locator("#app-header p").evaluate(CONTRAST_JS)  # was 1.9:1 (theme's subdued grey)
            assert light_header >= 4.5, light_header

            # -- 420 px: every tab on screen, the Runs chart above the log --------------------------------
            narrow = browser.new_page(viewport={"width": 420, "height": 900}, locale="en-US")
            narrow.set_default_timeout(30_000)
            narrow.goto(studio + "/?lang=en")
            expect(narrow.get_by_role("tab").first).to_have_text("Datasets")
            tabs = narrow.get_by_role("tab")
            assert [name.strip() for name in tabs.all_inner_texts()] == TABS_EN
            for index in range(tabs.count()):
                box = tabs.nth(index).bounding_box()
                assert tabs.nth(index).is_visible() and box and box["x"] >= 0 and box["x"] + box["width"] <= 420, (
                    TABS_EN[index], box)
            assert not narrow.locator(".overflow-menu").is_visible()
            narrow.get_by_role("tab", name="Runs").click()
            plot, logs = narrow.locator("#loss-plot"), narrow.locator("#runs-logs")
            expect(logs).to_be_visible()
            plot_box, logs_box = plot.bounding_box(), logs.bounding_box()
            assert plot_box and logs_box and logs_box["y"] >= plot_box["y"] + plot_box["height"] - 1, (plot_box,
                                                                                                       logs_box)
            assert plot_box["width"] > 300 and logs_box["width"] > 300, (plot_box, logs_box)
            buttons = narrow.locator("#tabs button:visible")
            outside = [(buttons.nth(i).inner_text(), box) for i in range(buttons.count())
                       if (box := buttons.nth(i).bounding_box()) and (box["x"] < 0 or box["x"] + box["width"] > 420)]
            assert buttons.count() >= 4 and not outside, outside  # every button of the page within reach
            shot(narrow, "e2e-narrow-runs.png")
            narrow.get_by_role("tab", name="Evaluate").click()  # its tables scroll sideways, not one letter a line
            header = narrow.locator("#eval-predictions th", has_text="exact match").first
            expect(header).to_be_visible()
            assert (box := header.bounding_box()) and box["height"] < 80, box  # was ~150 px: e/x/a/c/t stacked
            samples = narrow.locator("#eval-samples").bounding_box()  # the sliders stack: their labels have room
            assert samples and samples["width"] > 300, samples  # was ~130 px, its label one character a line
        except Exception:
            shot(page, "e2e-models-failed.png")
            raise
        finally:
            expect.set_options(timeout=5_000)  # Playwright's default again, for the tests after this one
            browser.close()
