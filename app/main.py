"""The Tunesmith studio UI: one ``gr.Blocks`` with Datasets, Train, Runs, Export, Evaluate and Chat tabs.

The UI is only a client of the HTTP API (``api_url``, e.g. ``http://127.0.0.1:7860/api/v1``); it holds no
training state, so closing the browser changes nothing. ``backend.cli serve`` mounts it at ``/``::

    gr.mount_gradio_app(fastapi_app, build_app(api_url), path="/", css=STUDIO_CSS)

Standalone (against an API running elsewhere): ``python -m app.main --api-url http://HOST:PORT/api/v1``.
"""

from __future__ import annotations

import argparse
import logging
import os

import gradio as gr

from app.client import ApiError, TunesmithClient
from app.pages import chat, datasets, evaluate, export, runs, train

# Optional polish; pass it to gr.mount_gradio_app / launch (Gradio 6 takes css there, not in Blocks()).
STUDIO_CSS = """
#app-header h1 { margin-bottom: 0; }
#app-header p { margin-top: 2px; color: var(--body-text-color-subdued); }
.ts-hint p { font-size: 13px; color: var(--body-text-color-subdued); margin: 0; }
"""


def header_markdown(client: TunesmithClient) -> str:
    try:
        health = client.health()
    except ApiError as exc:
        return f"# Tunesmith\n⚠ The training API is not reachable ({exc}). Start it with `tunesmith serve`."
    device = str(health.get("device", "?"))
    gpus = health.get("gpus") or []
    if gpus:
        names = [str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in gpus]
        device += f" · {len(gpus)} GPU{'s' if len(gpus) != 1 else ''}: " + ", ".join(sorted(set(names)))
    return (
        "# Tunesmith\n"
        f"Fine-tune language models in your browser · API {health.get('status', '?')} · "
        f"v{health.get('version', '?')} · device {device}"
    )


def build_app(api_url: str, token: str | None = None) -> gr.Blocks:
    """Build the studio for the API at ``api_url``; ``token`` is the API's access token (sent as a bearer header
    by the server-side client, never to the browser). Nothing is fetched until a browser opens the page."""
    # Each open Runs tab polls the API every 2 s: keep httpx's one-INFO-line-per-request out of the server log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = TunesmithClient(api_url, token=token)
    with gr.Blocks(title="Tunesmith", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        header = gr.Markdown("# Tunesmith", elem_id="app-header")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Datasets", id="datasets", elem_id="tab-datasets") as datasets_tab:
                datasets_page = datasets.build(client)
            with gr.Tab("Train", id="train", elem_id="tab-train") as train_tab:
                train_page = train.build(client)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as runs_tab:
                runs_page = runs.build(client)
            with gr.Tab("Export", id="export", elem_id="tab-export") as export_tab:
                export_page = export.build(client)
            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate") as evaluate_tab:
                evaluate.build(client).refresh.on(evaluate_tab.select)
            with gr.Tab("Chat", id="chat", elem_id="tab-chat") as chat_tab:
                chat.build(client).refresh.on(chat_tab.select)

        demo.load(lambda: header_markdown(client), outputs=header, show_progress="hidden")
        for page in (datasets_page, train_page, runs_page, export_page):
            page.refresh.on(demo.load)
        datasets_page.refresh.on(datasets_tab.select)
        train_page.refresh.on(train_tab.select)
        runs_page.refresh.on(runs_tab.select)
        export_page.refresh.on(export_tab.select)

        # Poll the API only while the Runs tab is on screen.
        for tab in (datasets_tab, train_tab, export_tab, evaluate_tab, chat_tab):
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
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Tunesmith studio UI against an existing API.")
    parser.add_argument("--api-url", default="http://127.0.0.1:7860/api/v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    args = parser.parse_args(argv)
    build_app(args.api_url, token=os.environ.get("TUNESMITH_TOKEN") or None).launch(server_name=args.host, server_port=args.port, css=STUDIO_CSS)


if __name__ == "__main__":
    main()
