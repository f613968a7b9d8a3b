"""ChatManager: resolve what to chat with, and keep at most one chat worker process alive.

The worker for the most recently used target stays loaded, so a conversation does not reload the model on
every turn; asking for another target stops it and starts a new one. Requests are serialized by a lock
(one model, one generation at a time). A crashed or timed-out worker is dropped and the next request starts
a fresh one. No torch here: the model lives in ``backend.engine.chat_worker``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from backend import catalog
from backend.chat.worker_process import ChatTimeout, ChatWorker, ChatWorkerError
from backend.engine_process import build_chat_worker_command
from backend.errors import Conflict, NotFound
from backend.jobs.reward_model_use import refuse_reward_model
from backend.jobs.service import JobNotFound, JobService
from backend.settings import Settings

log = logging.getLogger("tunesmith.chat")

TargetKind = Literal["base", "adapter", "merged", "model"]


class ChatTargetNotFound(NotFound):
    """No such model id / path, or no such job."""


class ChatTargetUnavailable(Conflict):
    """The job exists but has nothing to chat with (not succeeded, outputs missing)."""


@dataclass(frozen=True)
class ChatTarget:
    label: str
    kind: TargetKind
    model_dir: str
    adapter_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


WorkerFactory = Callable[[ChatTarget], ChatWorker]


class ChatManager:
    def __init__(self, settings: Settings, jobs: JobService, *, load_timeout_s: float = 900.0,
                 request_timeout_s: float = 600.0, worker_factory: WorkerFactory | None = None):
        self.settings = settings
        self.jobs = jobs
        self.load_timeout_s = load_timeout_s
        self.request_timeout_s = request_timeout_s
        self._start_worker = worker_factory or self._spawn
        self._lock = threading.Lock()
        self._worker: ChatWorker | None = None
        self._target: ChatTarget | None = None
        self._closed = False

    # -- targets ------------------------------------------------------------------------------------
    def resolve(self, *, model: str | None = None, job_id: str | None = None) -> ChatTarget:
        if (model is None) == (job_id is None):
            raise ValueError("give exactly one of model or job_id")
        if model is not None:
            info = catalog.resolve_model(self.settings, model)
            if info is None:
                known = ", ".join(m.id for m in catalog.list_models(self.settings)) or "none"
                raise ChatTargetNotFound(f"unknown model {model!r}; available: {known} "
                                         "(or an absolute path to an HF-format model directory)")
            return ChatTarget(label=info.id, kind="base", model_dir=info.path)
        return self._resolve_job(job_id)

    def _resolve_job(self, job_id: str) -> ChatTarget:
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
            raise ChatTargetNotFound(f"no job with id {job_id!r}") from None
        if job.state != "succeeded":
            raise ChatTargetUnavailable(f"job {job_id} is {job.state}; only a succeeded job can be chatted with")
        refuse_reward_model(job, "chatted with")
        name = f"{job.name} ({job_id})" if job.name else job_id
        if job.output == "model":
            return self._checked(ChatTarget(f"{name} · trained model", "model", str(job.run.model_dir)))
        weights = job.run.weights()
        if weights.merged:  # a merged model is one plain model: faster to load than base + adapter
            return ChatTarget(f"{name} · merged", "merged", str(weights.merged))
        if weights.adapter is None:
            raise ChatTargetUnavailable(f"job {job_id} has no adapter on disk ({job.run.adapter_dir})")
        return self._checked(ChatTarget(f"{name} · adapter", "adapter", weights.base_model, str(weights.adapter)))

    @staticmethod
    def _checked(target: ChatTarget) -> ChatTarget:
        if not (Path(target.model_dir) / "config.json").is_file():
            raise ChatTargetUnavailable(f"{target.label}: no model on disk at {target.model_dir} "
                                        "(was the run directory or the base model moved?)")
        return target

    # -- chatting -----------------------------------------------------------------------------------
    def chat(self, target: ChatTarget, messages: list[dict], *, max_new_tokens: int = 128,
             temperature: float = 0.7, top_p: float = 0.9) -> dict:
        """``{"text", "tokens", "seconds", "trimmed_turns"}`` from the worker for ``target``; raises ChatWorkerError."""
        final: dict = {}
        for event in self.chat_stream(target, messages, max_new_tokens=max_new_tokens, temperature=temperature,
                                      top_p=top_p, stream=False):
            final = event
        return final

    def chat_stream(self, target: ChatTarget, messages: list[dict], *, max_new_tokens: int = 128,
                    temperature: float = 0.7, top_p: float = 0.9, stream: bool = True,
                    stop: list[str] | None = None) -> Generator[dict, None, None]:
        """Yield ``{"delta": str}`` events while the reply is generated, then the final ``{"text", "tokens",
        "seconds", "trimmed_turns"}`` (``stream=False``: only the final one).

        The model is loaded and the request sent when the generator is first advanced; load and worker failures
        raise ChatWorkerError from there. The lock is held until the final reply has been read, even when the
        consumer stops early (the remaining lines are drained), so the next request never reads stale output.
        """
        request = {"messages": messages, "max_new_tokens": max_new_tokens, "temperature": temperature,
                   "top_p": top_p, "stream": stream, **({"stop": stop} if stop else {})}
        with self._lock:
            if self._closed:
                raise ChatWorkerError("the chat service is shutting down")
            worker = self._worker_for(target)
            final = None
            try:
                worker.send(request)
                while final is None:
                    reply = worker.read(self.request_timeout_s)
                    if "delta" in reply:
                        yield {"delta": str(reply["delta"])}
                    else:
                        final = reply
            except ChatWorkerError:
                self._stop_worker(grace_s=0)
                raise
            except GeneratorExit:
                self._drain(worker)
                raise
        if "error" in final:
            raise ChatWorkerError(str(final["error"]))
        yield {"text": str(final.get("text", "")), "tokens": int(final.get("tokens", 0)),
               "seconds": float(final.get("seconds", 0.0)), "trimmed_turns": int(final.get("trimmed_turns", 0)),
               **{key: final[key] for key in ("prompt_tokens", "finish_reason") if key in final}}  # for /v1 usage

    def _drain(self, worker: ChatWorker) -> None:
        """Read a reply the consumer abandoned up to its final line; a worker that does not finish is stopped."""
        try:
            while "delta" in worker.read(self.request_timeout_s):
                pass
        except ChatWorkerError:
            self._stop_worker(grace_s=0)

    def _worker_for(self, target: ChatTarget) -> ChatWorker:
        if self._worker is not None and self._target == target and self._worker.alive():
            return self._worker
        self._stop_worker()
        log.info("starting chat worker for %s", target.label)
        worker = self._start_worker(target)
        try:
            ready = worker.read(self.load_timeout_s)
        except ChatTimeout:
            worker.stop(grace_s=0)
            raise ChatTimeout(f"loading {target.label} took longer than {self.load_timeout_s:g} s; "
                              "the worker was stopped") from None
        except ChatWorkerError:
            worker.stop(grace_s=0)
            raise
        if not ready.get("ready"):
            worker.stop(grace_s=0)
            hint = f" ({ready['hint']})" if ready.get("hint") else ""
            raise ChatWorkerError(f"{ready.get('error', 'the chat worker failed to start')}{hint}")
        self._worker, self._target = worker, target
        return worker

    @staticmethod
    def _spawn(target: ChatTarget) -> ChatWorker:
        return ChatWorker(build_chat_worker_command(target.model_dir, target.adapter_dir, python=sys.executable))

    def _stop_worker(self, grace_s: float = 5.0) -> None:
        worker, self._worker, self._target = self._worker, None, None
        if worker is not None:
            worker.stop(grace_s=grace_s)

    # -- introspection / shutdown -------------------------------------------------------------------
    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    @property
    def current_target(self) -> ChatTarget | None:
        return self._target

    def close(self) -> None:
        """Stop the worker now (even mid-request: that request fails) and refuse new requests."""
        self._closed = True
        worker = self._worker
        if worker is not None:
            worker.stop(grace_s=2.0)
        with self._lock:
            self._stop_worker(grace_s=0)
