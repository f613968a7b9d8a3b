"""Web side of "preview as the model sees it": run ``python -m backend.engine preview`` in a subprocess (the
web process never imports torch/transformers) and keep the last results in a small in-memory LRU cache.

A result depends only on the dataset's content (its sha256), the model directory, the cutoff, whether the
prompt is trained on and how many samples are shown, so that tuple is the cache key.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path

from backend.engine_process import EngineTimedOut, build_engine_command, run_engine
from backend.errors import EngineFailed

DEFAULT_TIMEOUT_S = 300.0
CACHE_SIZE = 16


def build_preview_command(model_dir: str | Path, data_path: str | Path, cutoff_len: int, samples: int,
                          train_on_prompt: bool, python: str = sys.executable, chat_template: str = "auto") -> list[str]:
    args = ["--model-dir", str(model_dir), "--data", str(data_path), "--cutoff", str(int(cutoff_len)),
            "--samples", str(int(samples))]
    args += ["--chat-template", chat_template] if chat_template != "auto" else []
    args += ["--train-on-prompt"] if train_on_prompt else []
    return build_engine_command("preview", *args, python=python)


class PreviewService:
    """Runs engine previews; at most ``cache_size`` results are kept (least recently used dropped first)."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, cache_size: int = CACHE_SIZE):
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def preview(self, *, sha256: str, data_path: str | Path, model_path: str | Path, cutoff_len: int,
                samples: int = 3, train_on_prompt: bool = False, chat_template: str = "auto") -> dict:
        key = (sha256, str(model_path), int(cutoff_len), bool(train_on_prompt), int(samples), chat_template)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = self._run(build_preview_command(model_path, data_path, cutoff_len, samples, train_on_prompt,
                                                 chat_template=chat_template))
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _run(self, argv: list[str]) -> dict:
        """The engine's JSON result; EngineFailed (its own error line, prefixed) or EngineTimedOut otherwise."""
        try:
            stdout = run_engine(argv, what="preview", timeout_s=self.timeout_s, env_extra={"CUDA_VISIBLE_DEVICES": ""},
                                timeout_hint="try again; a very large dataset or a slow disk can take a while")
        except EngineTimedOut:
            raise
        except EngineFailed as exc:
            raise EngineFailed(f"the preview failed: {exc.message}", hint=exc.hint) from None
        lines = [line for line in stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise EngineFailed("the preview process did not print its JSON result: "
                               + (lines or ["(no output)"])[-1][:200]) from None
        if not isinstance(result, dict):
            raise EngineFailed("the preview process printed something other than a JSON object")
        return result
