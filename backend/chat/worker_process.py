"""One chat worker subprocess (``python -m backend.engine.chat_worker``) seen from the web process.

Stdout is read by a thread into a queue so every read can time out; stderr is drained into a short
ring buffer so the pipe never fills and a crash can be explained with the worker's last words.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections import deque
from pathlib import Path

from backend.engine_process import PROJECT_ROOT, engine_env
from backend.errors import EngineFailed

STDERR_LINES = 200
NOISE_PREFIXES = ("Loading weights", "Writing model shards", "Loading checkpoint shards")


class ChatWorkerError(EngineFailed):
    """The worker failed: it could not load the model, a request failed, or the process died (422 with its words)."""


class ChatTimeout(ChatWorkerError):
    """The worker did not answer in time (it is killed; the next request starts a new one). 503: ask for less."""

    status = 503


class ChatWorker:
    def __init__(self, argv: list[str], cwd: Path = PROJECT_ROOT, env: dict[str, str] | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env or engine_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
            start_new_session=True,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        threading.Thread(target=self._pump_stdout, name=f"chat-worker-{self.pid}-out", daemon=True).start()
        threading.Thread(target=self._pump_stderr, name=f"chat-worker-{self.pid}-err", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _pump_stdout(self) -> None:
        for line in self.proc.stdout:
            if line.strip():
                self._replies.put(line)
        self.proc.stdout.close()
        self._replies.put(None)  # EOF: the process is gone

    def _pump_stderr(self) -> None:
        for line in self.proc.stderr:
            for part in line.rstrip("\n").split("\r"):  # progress bars redraw with \r
                if part.strip() and not part.startswith(NOISE_PREFIXES):
                    self._stderr.append(part.rstrip())
        self.proc.stderr.close()

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def send(self, request: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise ChatWorkerError(self._death_message()) from None

    def read(self, timeout_s: float) -> dict:
        """The next JSON line from the worker, or ChatTimeout / ChatWorkerError (process exited)."""
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            raise ChatTimeout(f"the chat worker did not answer within {timeout_s:g} s; it was stopped. "
                              "Ask for fewer max_new_tokens or use a smaller model.") from None
        if line is None:
            raise ChatWorkerError(self._death_message())
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise ChatWorkerError(f"the chat worker wrote a line that is not JSON: {line[:200]!r}") from None
        if not isinstance(reply, dict):
            raise ChatWorkerError(f"the chat worker wrote an unexpected reply: {line[:200]!r}")
        return reply

    def _death_message(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        tail = self.stderr_tail(5)
        last = tail.splitlines()[-1] if tail else "no output on stderr"
        return f"the chat worker exited unexpectedly (exit code {code}): {last}"

    def stop(self, grace_s: float = 5.0) -> None:
        """Close stdin (the worker exits on EOF), then kill it if it is still there after ``grace_s``."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
