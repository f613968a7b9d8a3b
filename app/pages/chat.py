"""Chat tab: talk to a base model or to the result of a finished run (adapter, trained or merged model).

The conversation lives in the browser (the ``gr.Chatbot`` value) and is sent whole with every turn; the API
keeps the last used model loaded in a worker process, so only the first reply for a target waits for loading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, Job, Model, TunesmithClient
from app.format import error_markdown
from app.i18n import DEFAULT, localized, request_lang, t
from app.pages import Refresh, targets


@dataclass
class ChatPage:
    target: gr.Dropdown
    refresh: Refresh


def target_choices(models: list[Model], jobs: list[Job], lang: str = DEFAULT) -> list[tuple[str, str]]:
    """Dropdown ``(label, value)`` pairs: base models first, then succeeded runs, newest first."""
    return targets.target_choices(models, jobs, lang)


def parse_target(value: str | None) -> dict[str, str]:
    """``{"model": id}`` or ``{"job_id": id}`` for a dropdown value; ``{}`` when nothing is picked."""
    picked = targets.parse_target(value)
    return targets.api_reference(picked) if picked else {}


def message_text(content: Any) -> str:
    """The text of a Chatbot message, whether its content is a str, a text block or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""


def plain_history(history: list[dict] | None) -> list[dict[str, str]]:
    return [{"role": str(m.get("role")), "content": message_text(m.get("content"))} for m in history or []]


def api_messages(history: list[dict] | None, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    return messages + [m for m in plain_history(history) if m["role"] in ("user", "assistant")]


def stats_markdown(reply: dict, lang: str = DEFAULT) -> str:
    tokens, seconds = int(reply.get("tokens") or 0), float(reply.get("seconds") or 0.0)
    rate = t("chat.rate", lang, rate=f"{tokens / seconds:.1f}") if seconds > 0 else ""
    label = (reply.get("target") or {}).get("label", "?")
    trimmed = int(reply.get("trimmed_turns") or 0)
    note = "\n\n" + t("chat.trimmed", lang, count=trimmed) if trimmed else ""
    return t("chat.stats", lang, tokens=tokens, seconds=f"{seconds:.2f}", rate=rate, label=label) + note


class StopRequests:
    """Stop buttons pressed, per browser session: the streaming reply of that session checks it between pieces
    and ends early (Gradio's own event cancelling would leave the API's stream, and its chat worker, busy)."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}

    def start(self, session: str) -> Callable[[], bool]:
        event = self._events[session] = threading.Event()
        return event.is_set

    def stop(self, session: str) -> None:
        if session in self._events:
            self._events[session].set()

    def finish(self, session: str) -> None:
        self._events.pop(session, None)


def answer_turn(client: TunesmithClient, history: list[dict], target_value: str | None, system_prompt: str | None,
                max_new_tokens: float, temperature: float, top_p: float, lang: str = DEFAULT,
                stopped: Callable[[], bool] = lambda: False):
    """Stream the answer to the pending user message: yields ``(chatbot, textbox, status)`` updates.

    The reply grows in the conversation as the model writes it. On failure the pending message (and any
    partial reply) is taken off the conversation and the message put back in the textbox, so it can be
    re-sent after fixing the problem (e.g. picking another target).
    """
    history = plain_history(history)
    if not history or history[-1]["role"] != "user":
        yield gr.skip(), gr.skip(), gr.skip()  # nothing new to answer (an empty message was sent)
        return
    pending = history[-1]["content"]
    target_ref = parse_target(target_value)
    if not target_ref:
        yield history[:-1], pending, t("chat.pick_target", lang)
        return
    messages = api_messages(history, system_prompt)
    reply = {"role": "assistant", "content": ""}
    final: dict = {}
    writer = target_value.split(":", 1)[1] if target_value else "?"
    events = client.chat_stream(messages, **target_ref, max_new_tokens=int(max_new_tokens),
                                temperature=float(temperature), top_p=float(top_p))
    try:
        for event in events:
            if "delta" in event:
                reply["content"] += str(event["delta"])
                if stopped():
                    break
                yield history + [dict(reply)], gr.skip(), t("chat.writing", lang, label=writer)
            else:
                final = event
    except ApiError as exc:
        yield history[:-1], pending, t("chat.no_answer", lang) + "\n\n" + error_markdown(exc, lang)
        return
    finally:
        events.close()  # a stopped reply: closing the stream ends it on the API side too
    if not final:
        yield history + [reply], gr.skip(), t("chat.stopped", lang)
        return
    reply["content"] = str(final.get("text", reply["content"].strip()))
    yield history + [reply], gr.skip(), stats_markdown(final, lang)


def _layout() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(t("chat.intro"))
    with gr.Row(equal_height=True):
        c["target"] = gr.Dropdown(label=t("chat.target"), choices=[], value=None, elem_id="chat-target", scale=5)
        c["refresh"] = gr.Button(t("chat.refresh"), size="sm", scale=0, min_width=100, elem_id="chat-refresh")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            c["chatbot"] = gr.Chatbot(label=t("chat.conversation"), height=460, elem_id="chatbot",
                                      feedback_options=None, buttons=["copy", "copy_all"],
                                      placeholder=t("chat.placeholder"))
            with gr.Row(equal_height=True):
                c["text"] = gr.Textbox(label=t("chat.input"), show_label=False, placeholder=t("chat.input"), scale=5,
                                       elem_id="chat-input", autofocus=True)
                c["send"] = gr.Button(t("chat.send"), variant="primary", scale=0, min_width=90, elem_id="chat-send")
                c["stop"] = gr.Button(t("chat.stop"), variant="stop", scale=0, min_width=90, visible=False,
                                      elem_id="chat-stop")
                c["clear"] = gr.Button(t("chat.clear"), scale=0, min_width=90, elem_id="chat-clear")
            c["status"] = gr.Markdown(elem_id="chat-status")
        with gr.Column(scale=1, variant="panel"):
            c["system"] = gr.Textbox(label=t("chat.system"), lines=3, placeholder=t("chat.system_ph"),
                                     elem_id="chat-system")
            c["max_tokens"] = gr.Slider(1, 2048, value=128, step=1, label=t("chat.max_tokens"),
                                        elem_id="chat-max-tokens")
            c["temperature"] = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label=t("chat.temperature"),
                                         info=t("chat.temperature_help"), elem_id="chat-temperature")
            c["top_p"] = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label=t("chat.top_p"), elem_id="chat-top-p")
    return c


def build(client: TunesmithClient) -> ChatPage:
    c = _layout()
    chatbot, text, send, stop = c["chatbot"], c["text"], c["send"], c["stop"]
    inputs = [chatbot, c["target"], c["system"], c["max_tokens"], c["temperature"], c["top_p"]]
    replying = [text, send, stop]
    stops = StopRequests()
    for trigger in (send.click, text.submit):
        # While a reply streams the box and Send are locked (a message sent then would be overwritten by the
        # reply's next update) and Stop is offered; the reply's end unlocks them.
        trigger(localized(add_user_message), inputs=[chatbot, text], outputs=[chatbot, *replying],
                show_progress="hidden").then(
            reply_handler(client, stops), inputs=inputs, outputs=[chatbot, text, c["status"]],
            show_progress="minimal").then(localized(unlock), outputs=replying, show_progress="hidden")
    def press_stop(request: gr.Request) -> None:
        stops.stop(request.session_hash)

    stop.click(press_stop, show_progress="hidden")
    c["clear"].click(lambda: ([], "", ""), outputs=[chatbot, text, c["status"]], show_progress="hidden")
    c["target"].input(localized(on_target), inputs=[c["target"]], outputs=[c["status"]], show_progress="hidden")
    refresh = Refresh(localized(partial(refresh_targets, client)), [c["target"]], [c["target"]])
    refresh.on(c["refresh"].click)
    return ChatPage(target=c["target"], refresh=refresh)


# -- handlers: plain functions of (client, lang, inputs...) -----------------------------------------------


def refresh_targets(client: TunesmithClient, lang: str, current: str | None):
    try:
        models, jobs = client.list_models(), client.list_jobs()
    except ApiError as exc:
        gr.Warning(t("chat.list_failed", lang, error=exc))
        return gr.skip()
    choices = target_choices(models, jobs, lang)
    values = [value for _label, value in choices]
    return gr.Dropdown(choices=choices, value=current if current in values else (values[0] if values else None))


def add_user_message(lang: str, history: list[dict], message: str):
    """Put the message into the conversation and lock the input while the reply streams."""
    if not message or not message.strip():
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return (plain_history(history) + [{"role": "user", "content": message.strip()}],
            gr.Textbox(value="", interactive=False, placeholder=t("chat.input_busy", lang)),
            gr.Button(interactive=False), gr.Button(visible=True))


def reply_handler(client: TunesmithClient, stops: StopRequests):
    """The streaming reply's callback: Gradio passes the request (language, and the session Stop speaks for)."""
    def reply(request: gr.Request, *values: Any):
        stopped = stops.start(request.session_hash)
        try:
            yield from answer_turn(client, *values, lang=request_lang(request), stopped=stopped)
        finally:
            stops.finish(request.session_hash)
    return reply


def unlock(lang: str):
    return (gr.Textbox(interactive=True, placeholder=t("chat.input", lang)), gr.Button(interactive=True),
            gr.Button(visible=False))


def on_target(lang: str, target_value: str | None) -> str:
    picked = targets.parse_target(target_value)
    return t("chat.next_target", lang, label=picked[1]) if picked else ""
