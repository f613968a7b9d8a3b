"""A long-lived chat process: load a model (plus an optional LoRA adapter) once, then answer requests.

    python -m backend.engine.chat_worker --model-dir BASE [--adapter-dir ADAPTER]

Protocol (one JSON object per line; stdout carries nothing else, logs go to stderr):

- after loading, the worker writes ``{"ready": true, "device": "cpu", "dtype": "float32"}``, or
  ``{"error": "...", "hint": "..."}`` and exits 1 when the model cannot be loaded;
- then, for each request line on stdin ``{"messages": [{"role", "content"}...], "max_new_tokens": int,
  "temperature": float, "top_p": float, "stream": bool, "stop"?: [str]}`` it writes ``{"text": str, "tokens": int,
  "seconds": float, "trimmed_turns": int, "prompt_tokens": int, "finish_reason": "stop"|"length"}`` or
  ``{"error": "..."}`` (the worker keeps running after a failed
  request). With ``"stream": true`` the final line is preceded by ``{"delta": str}`` lines, one per decoded
  piece of text, as they are generated;
- it exits when stdin closes.

The prompt is the tokenizer's chat template with ``add_generation_prompt=True``; temperature 0 is greedy.
A conversation longer than the model's context (minus ``max_new_tokens``) loses its oldest turns, keeping the
system prompt and the newest user message; ``trimmed_turns`` says how many were dropped. Weights are fp32 on
CPU and bf16 on a CUDA GPU (fp16 where bf16 is unsupported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from threading import Thread
from typing import IO

import torch

from backend.engine.failures import classify_failure


def pick_device() -> tuple[torch.device, torch.dtype]:
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    return torch.device("cpu"), torch.float32


def load(model_dir: str, adapter_dir: str | None, device: torch.device, dtype: torch.dtype):
    """``(model, tokenizer)``; the tokenizer comes from the adapter dir when it has one (training saves it)."""
    from transformers import AutoModelForCausalLM

    from backend.engine.model import check_model_dir, load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(check_model_dir(model_dir), dtype=dtype)
    tokenizer_dir = model_dir
    if adapter_dir:
        from peft import PeftModel

        if not (Path(adapter_dir) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"no adapter_config.json in {adapter_dir}")
        model = PeftModel.from_pretrained(model, adapter_dir)
        if (Path(adapter_dir) / "tokenizer_config.json").is_file():
            tokenizer_dir = adapter_dir
    model.to(device).eval()
    model.config.use_cache = True
    return model, load_tokenizer(tokenizer_dir)


def context_limit(model) -> int:
    """Tokens the model can attend over (``max_position_embeddings``; 2048 when the config does not say)."""
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(limit) if limit else 2048


def fit_history(tokenizer, messages: list[dict], budget: int) -> tuple[dict, int]:
    """The encoded prompt of the newest turns that fit ``budget`` tokens, and how many turns were dropped.

    The system prompt (if first) and the last message always stay; older turns go first, a user/assistant
    pair at a time so the conversation still alternates.
    """
    system = messages[:1] if messages[0].get("role") == "system" else []
    turns = messages[len(system):]
    dropped = 0
    while True:
        encoded = tokenizer.apply_chat_template(system + turns, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
        length = int(encoded["input_ids"].shape[1])
        if length <= budget:
            return encoded, dropped
        if len(turns) <= 1:
            raise ValueError(f"the last message alone is {length} tokens with the chat template, over the "
                             f"{budget} tokens the model's context leaves after max_new_tokens; shorten the "
                             "message (or the system prompt) or lower max_new_tokens")
        step = 2 if len(turns) > 2 and turns[1].get("role") == "assistant" else 1
        turns, dropped = turns[step:], dropped + step


def generate(model, tokenizer, request: dict, on_text: Callable[[str], None] | None = None) -> dict:
    """One reply; ``on_text`` (when given) receives each decoded piece of text as soon as it is generated.
    ``request["stop"]`` (strings) ends the reply before the first of them, which is not part of the text."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("request needs a non-empty 'messages' list")
    max_new_tokens = int(request.get("max_new_tokens", 128))
    temperature = float(request.get("temperature", 0.0))
    top_p = float(request.get("top_p", 1.0))
    stops = StopText([str(s) for s in request.get("stop") or [] if s], on_text)
    budget = context_limit(model) - max_new_tokens
    if budget < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's "
                         f"{context_limit(model)}-token context; lower max_new_tokens")
    encoded, trimmed = fit_history(tokenizer, messages, budget)
    encoded = {key: value.to(model.device) for key, value in encoded.items()}
    sampling = ({"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
    kwargs = dict(**encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling)
    if stops.stops:
        kwargs.update(stop_strings=stops.stops, tokenizer=tokenizer)
    start = time.perf_counter()
    if on_text is None:
        with torch.inference_mode():
            out = model.generate(**kwargs)
    else:
        out = _generate_streaming(model, tokenizer, kwargs, stops.feed)
        stops.flush()
    new_tokens = out[0, encoded["input_ids"].shape[1]:]
    text, stopped = stops.cut(tokenizer.decode(new_tokens, skip_special_tokens=True))
    finish = "length" if not stopped and int(new_tokens.shape[0]) >= max_new_tokens else "stop"
    return {"text": text.strip(), "tokens": int(new_tokens.shape[0]), "seconds": round(time.perf_counter() - start, 3),
            "trimmed_turns": trimmed, "prompt_tokens": int(encoded["input_ids"].shape[1]), "finish_reason": finish}


class StopText:
    """Stop strings for a streamed reply: text is passed on only once it cannot be the start of a stop string,
    and nothing from the first stop string on is passed at all."""

    def __init__(self, stops: list[str], on_text: Callable[[str], None] | None):
        self.stops, self.on_text = stops, on_text
        self.pending, self.stopped = "", False

    def cut(self, text: str) -> tuple[str, bool]:
        """``text`` up to the first stop string, and whether one was found."""
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return (text[:min(found)], True) if found else (text, False)

    def feed(self, piece: str) -> None:
        if self.stopped or self.on_text is None:
            return
        text, self.stopped = self.cut(self.pending + piece)
        keep = 0 if self.stopped else max((len(s) - 1 for s in self.stops), default=0)
        split = max(len(text) - keep, 0)
        ready, self.pending = text[:split], text[split:]
        if ready:
            self.on_text(ready)

    def flush(self) -> None:
        if self.pending and not self.stopped and self.on_text is not None:
            self.on_text(self.pending)
        self.pending = ""


def _generate_streaming(model, tokenizer, kwargs: dict, on_text: Callable[[str], None]):
    """``model.generate`` on a thread, feeding ``on_text`` from a TextIteratorStreamer; returns its output."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: dict = {}

    def run() -> None:
        try:
            with torch.inference_mode():
                result["out"] = model.generate(**kwargs, streamer=streamer)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            result["error"] = exc
            streamer.end()

    thread = Thread(target=run, name="chat-generate", daemon=True)
    thread.start()
    for piece in streamer:
        if piece:
            on_text(piece)
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["out"]


def serve(model, tokenizer, requests: IO[str], replies: IO[str]) -> None:
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            streaming = isinstance(request, dict) and request.get("stream")
            reply = generate(model, tokenizer, request, (lambda piece: _write(replies, {"delta": piece}))
                             if streaming else None)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            error, _hint = classify_failure(exc)
            print(f"chat request failed: {error}", file=sys.stderr, flush=True)
            reply = {"error": error}
        _write(replies, reply)


def _write(replies: IO[str], obj: dict) -> None:
    replies.write(json.dumps(obj) + "\n")
    replies.flush()


def protocol_stdout() -> IO[str]:
    """The real stdout for protocol lines; fd 1 (print, library chatter) is pointed at stderr from here on."""
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return proto


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.engine.chat_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="base (or full/merged) HF-format model directory")
    parser.add_argument("--adapter-dir", default=None, help="LoRA adapter directory to load on top of the base")
    args = parser.parse_args(argv)
    replies = protocol_stdout()
    device, dtype = pick_device()
    try:
        model, tokenizer = load(args.model_dir, args.adapter_dir, device, dtype)
    except Exception as exc:  # noqa: BLE001
        error, hint = classify_failure(exc)
        print(f"chat worker could not load the model: {error}", file=sys.stderr, flush=True)
        replies.write(json.dumps({"error": f"could not load the model: {error}", "hint": hint}) + "\n")
        return 1
    print(f"chat worker ready: {args.model_dir} adapter={args.adapter_dir} on {device} {dtype}",
          file=sys.stderr, flush=True)
    replies.write(json.dumps({"ready": True, "device": device.type, "dtype": str(dtype).removeprefix("torch.")})
                  + "\n")
    serve(model, tokenizer, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
