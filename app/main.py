"""The Tunesmith studio UI: one ``gr.Blocks`` with Datasets, Models, Train, Runs, Export, Evaluate and Chat tabs.

The UI is only a client of the HTTP API (``api_url``, e.g. ``http://127.0.0.1:7860/api/v1``); it holds no
training state, so closing the browser changes nothing. ``backend.cli serve`` mounts it at ``/``::

    gr.mount_gradio_app(fastapi_app, build_app(api_url), path="/", css=STUDIO_CSS)

Standalone (against an API running elsewhere): ``python -m app.main --api-url http://HOST:PORT/api/v1``.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import gradio as gr

from app.client import ApiError, TunesmithClient
from app.i18n import gradio_i18n, localized, t
from app.i18n.switch import build_switch, build_theme_switch, init_js, switch_js, theme_init_js, theme_toggle_js
from app.pages import chat, datasets, evaluate, export, models, runs, runs_continue, targets, train

# Optional polish; pass it to gr.mount_gradio_app / launch (Gradio 6 takes css there, not in Blocks()).
STUDIO_CSS = """
#app-header h1 { margin-bottom: 0; }
#header-switches { flex-grow: 0; align-self: flex-start; gap: 4px; }
#app-header p { margin-top: 2px; color: var(--block-info-text-color); }  /* the subdued grey was 1.9:1 on white */
.ts-hint p { font-size: 13px; color: var(--block-info-text-color); margin: 0; }
/* Contrast (WCAG AA, 4.5:1): help text darker than the theme's grey, white on a darker orange; in dark mode too
   (Gradio's dark theme sets its own values on .dark, which would win over :root). */
:root, .dark { --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
               --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff; }
:root { --block-info-text-color: #4b5563; }
.dark { --block-info-text-color: #d1d5db; }
/* Narrow screens (a phone, 420 px): what sits side by side stacks; tabs wrap (gr.Tabs overflow_behavior). */
@media (max-width: 640px) {
  #app-header { min-width: 100% !important; }  /* the header line first, its switches below it */
  /* Evaluate's tables scroll sideways rather than squeeze ROUGE-L / exact match into one letter per line. */
  #eval-predictions table, #eval-history table { min-width: 1000px; }
}
"""


def header_markdown(client: TunesmithClient, lang: str) -> str:
    try:
        health = client.health()
    except ApiError as exc:
        return "# Tunesmith\n" + t("app.api_down", lang, error=exc)
    device = str(health.get("device", "?"))
    gpus = health.get("gpus") or []
    if gpus:
        names = [str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in gpus]
        device += " · " + t("app.gpus", lang, count=len(gpus), names=", ".join(sorted(set(names))))
    return "# Tunesmith\n" + t("app.tagline", lang, status=health.get("status", "?"),
                                 version=health.get("version", "?"), device=device)


def build_app(api_url: str, token: str | None = None) -> gr.Blocks:
    """Build the studio for the API at ``api_url``; ``token`` is the API's access token (sent as a bearer header
    by the server-side client, never to the browser). Nothing is fetched until a browser opens the page."""
    # Each open Runs tab polls the API every 2 s: keep httpx's one-INFO-line-per-request out of the server log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = TunesmithClient(api_url, token=token)
    with gr.Blocks(title="Tunesmith", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        with gr.Row(equal_height=False, elem_id="app-header-row"):
            header = gr.Markdown("# Tunesmith", elem_id="app-header")
            with gr.Column(scale=0, min_width=250, elem_id="header-switches"):
                lang_switch = build_switch()
                theme_switch = build_theme_switch()
        # Tabs wrap onto more rows on a narrow screen instead of hiding in a "⋯" menu (issue 12 group 9).
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as tabs:
            with gr.Tab(t("tab.datasets"), id="datasets", elem_id="tab-datasets") as datasets_tab:
                datasets_page = datasets.build(client)
            with gr.Tab(t("tab.models"), id="models", elem_id="tab-models") as models_tab:
                models_page = models.build(client)
                models_page.refresh.on(models_tab.select)
            with gr.Tab(t("tab.train"), id="train", elem_id="tab-train") as train_tab:
                train_page = train.build(client)
            with gr.Tab(t("tab.runs"), id="runs", elem_id="tab-runs") as runs_tab:
                runs_page = runs.build(client)
            with gr.Tab(t("tab.export"), id="export", elem_id="tab-export") as export_tab:
                export_page = export.build(client)
            with gr.Tab(t("tab.evaluate"), id="evaluate", elem_id="tab-evaluate") as evaluate_tab:
                evaluate_page = evaluate.build(client)
                evaluate_page.refresh.on(evaluate_tab.select)
            with gr.Tab(t("tab.chat"), id="chat", elem_id="tab-chat") as chat_tab:
                chat_page = chat.build(client)
                chat_page.refresh.on(chat_tab.select)

        tab_list = [datasets_tab, models_tab, train_tab, runs_tab, export_tab, evaluate_tab, chat_tab]
        pages = {"datasets": datasets_page, "models": models_page, "train": train_page, "runs": runs_page,
                 "export": export_page, "evaluate": evaluate_page, "chat": chat_page}
        wire_language_and_theme(demo, client, header, (lang_switch, theme_switch), tab_list, pages)
        datasets_page.refresh.on(datasets_tab.select)
        train_page.refresh.on(train_tab.select)
        runs_page.refresh.on(runs_tab.select)
        export_page.refresh.on(export_tab.select)

        # Poll the API only while the Runs tab is on screen.
        for tab in (datasets_tab, models_tab, train_tab, export_tab, evaluate_tab, chat_tab):
            tab.select(lambda: gr.Timer(active=False), outputs=runs_page.timer, show_progress="hidden")
        runs_tab.select(lambda: gr.Timer(active=True), outputs=runs_page.timer, show_progress="hidden")

        # A run started from Train is preselected in Runs; the button jumps there.
        train_page.started_job.change(
            runs_page.refresh.fn,
            inputs=[train_page.started_job],
            outputs=list(runs_page.refresh.outputs),
            show_progress="hidden",
        )

        def open_runs():
            return gr.Tabs(selected="runs"), gr.Timer(active=True)

        train_page.open_run.click(open_runs, outputs=[tabs, runs_page.timer], show_progress="hidden")
        wire_run_shortcuts(tabs, runs_page, {"chat": chat_page, "evaluate": evaluate_page, "export": export_page})
        runs_continue.wire(tabs, runs_page, train_page)  # Runs' "Continue training" -> Train, prefilled
    # Gradio's frontend translates the static strings: hand it every catalog (built after the pages, which add
    # formatted strings). mount_gradio_app(i18n=None) keeps this; launch() needs it passed again.
    demo.i18n_instance = gradio_i18n()
    return demo


def wire_language_and_theme(demo: gr.Blocks, client: TunesmithClient, header: gr.Markdown,
                            switches: tuple[Any, Any], tab_list: list[gr.Tab], pages: dict[str, Any]) -> None:
    """The header's language and theme switches: pick the language before the first paint, re-label the tabs and
    re-write what the server wrote after a switch. ``pages``: tab id -> page."""
    lang_switch, theme_switch = switches
    show_header = localized(lambda lang: header_markdown(client, lang))
    # Gradio labels the buttons of tabs not yet opened once, in the locale of the moment: label them again
    # after each switch of locale.
    tab_keys = ["tab.datasets", "tab.models", "tab.train", "tab.runs", "tab.export", "tab.evaluate", "tab.chat"]

    def relabel_tabs():
        return [gr.Tab(label=t(key)) for key in tab_keys]

    # The page script picks the language (?lang=, remembered choice, browser) before anything is rendered.
    loaded = demo.load(None, js=init_js(), outputs=lang_switch, show_progress="hidden")
    loaded.then(show_header, outputs=header, show_progress="hidden")
    demo.load(None, js=theme_init_js(), outputs=theme_switch, show_progress="hidden")
    theme_switch.input(None, inputs=theme_switch, js=theme_toggle_js(), show_progress="hidden")
    loaded.then(relabel_tabs, outputs=tab_list, show_progress="hidden")
    for name in ("datasets", "train", "runs", "export"):  # the others fill when their tab is opened
        pages[name].refresh.on(loaded.then)
    # Switching flips the static strings in the browser at once; what the server wrote is written again.
    switched = lang_switch.input(None, inputs=lang_switch, outputs=lang_switch, js=switch_js(),
                                 show_progress="hidden")
    switched.then(show_header, outputs=header, show_progress="hidden")
    switched.then(relabel_tabs, outputs=tab_list, show_progress="hidden")
    for page in pages.values():
        page.refresh.on(switched.then)
    pages["runs"].repaint.on(switched.then)  # the Runs card and charts


def wire_run_shortcuts(tabs: gr.Tabs, runs_page: runs.RunsPage, pages: dict[str, Any]) -> None:
    """Runs' "Chat with it" / "Evaluate it" / "Export it": open that tab with the selected run picked (the page's
    list is re-read with the run as its current choice, so it is there even if the list was stale)."""
    for tab_id, page in pages.items():
        wanted = gr.State(None)
        as_choice = (lambda job_id: targets.target_value("job", job_id)) if tab_id != "export" else (lambda j: j)
        # The tab is switched last: switching fires its own refresh, which then keeps the run already picked.
        runs_page.shortcuts[tab_id].click(
            lambda job_id, encode=as_choice: encode(job_id), inputs=[runs_page.job], outputs=[wanted],
            show_progress="hidden",
        ).then(page.refresh.fn, inputs=[wanted, *list(page.refresh.inputs)[1:]], outputs=list(page.refresh.outputs),
               show_progress="hidden").then(lambda tab=tab_id: gr.Tabs(selected=tab), outputs=[tabs],
                                            show_progress="hidden")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Tunesmith studio UI against an existing API.")
    parser.add_argument("--api-url", default="http://127.0.0.1:7860/api/v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        # This UI acts on the API with the server's token and has no sign-in of its own: local use only.
        parser.error(f"--host {args.host}: the standalone UI only serves loopback; to share the studio, run "
                     "`tunesmith serve --host ...` with TUNESMITH_TOKEN set (see 'Running it for a team').")
    demo = build_app(args.api_url, token=os.environ.get("TUNESMITH_TOKEN") or None)
    demo.launch(server_name=args.host, server_port=args.port, css=STUDIO_CSS, i18n=demo.i18n_instance)


if __name__ == "__main__":
    main()
