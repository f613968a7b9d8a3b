"""Exports of finished runs: start one (an engine subprocess on a thread), follow its progress, reuse a finished
one, list and serve the files. No torch here.

Layout: ``runs/<id>/exports/<key>/`` holds a finished export (the weights, README.md, Modelfile for GGUF, and
``export.json``, its manifest); ``<key>`` names the options (``gguf-q8_0``, ``safetensors-bf16-2GB``), so asking
for the same export again returns the finished one. While it runs, the engine writes into ``.work-<key>/``
(``progress.json`` there says which stage), and the folder is renamed into place only when everything is written:
a crash leaves no half export behind, only a ``.work-`` folder the next request starts over from.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from backend.config import rundir
from backend.engine_process import build_engine_command, run_engine
from backend.errors import Conflict, NotFound, StudioError
from backend.exports import modelfile
from backend.exports.chat_template import read_chat_template
from backend.exports.formats import GgufExport, SafetensorsExport, check_tools
from backend.exports.model_card import build_model_card
from backend.fsio import atomic_write_json, iter_jsonl, read_json_object
from backend.jobs.reward_model_use import refuse_reward_model
from backend.jobs.service import JobNotFound, JobService
from backend.jobs.store import utc_now

EXPORTS_DIR = "exports"
MANIFEST = "export.json"
PROGRESS = "progress.json"
LOG = "export.log"
EXPORT_TIMEOUT_S = 4 * 3600
SYSTEM_PROMPT_ROWS = 2000  # rows per dataset read to find the training system prompt


@dataclass
class _Running:
    spec: GgufExport | SafetensorsExport
    work: Path
    started_at: str
    done: threading.Event = field(default_factory=threading.Event)
    error: StudioError | None = None


class ExportService:
    def __init__(self, jobs: JobService):
        self.jobs = jobs
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], _Running] = {}
        self._failed: dict[tuple[str, str], dict] = {}

    # -- where -------------------------------------------------------------------------------------------------
    def _run_dir(self, job_id: str, *, finished: bool) -> Path:
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
            raise NotFound(f"no job with id {job_id!r}", loc=("path", "job_id")) from None
        if finished and job.state != "succeeded":
            raise Conflict(f"job {job_id} is {job.state}; only a succeeded run can be exported",
                           loc=("path", "job_id"), hint="wait for the run to finish, or export another run")
        return Path(job.run_dir)

    def export_dir(self, job_id: str, key: str) -> Path:
        if not key or key.startswith(".") or "/" in key:
            raise NotFound(f"no export {key!r}", loc=("path", "key"))
        return self._run_dir(job_id, finished=False) / EXPORTS_DIR / key

    # -- start / follow ----------------------------------------------------------------------------------------
    def request(self, job_id: str, spec: GgufExport | SafetensorsExport, *, wait: bool = False) -> dict:
        """The finished export when it exists (``reused: true``); else start it and return its running state
        (``wait``: block until it ends, raising its failure as EngineFailed)."""
        run_dir = self._run_dir(job_id, finished=True)
        if isinstance(spec, GgufExport):  # llama.cpp converts causal LMs; an rm run's score head is not one
            refuse_reward_model(self.jobs.get(job_id), "exported to GGUF", loc=("path", "job_id"))
        final = run_dir / EXPORTS_DIR / spec.key
        if (manifest := read_json_object(final / MANIFEST)) is not None:
            return {**manifest, "state": "succeeded", "reused": True}
        check_tools(spec)
        with self._lock:
            running = self._running.get((job_id, spec.key))
            if running is None:
                self._failed.pop((job_id, spec.key), None)
                running = _Running(spec, run_dir / EXPORTS_DIR / f".work-{spec.key}", utc_now())
                self._running[(job_id, spec.key)] = running
                threading.Thread(target=self._export, args=(job_id, run_dir, running), daemon=True,
                                 name=f"export-{job_id}-{spec.key}").start()
        if wait:
            running.done.wait()
            if running.error is not None:
                raise running.error
        return self.status(job_id, spec.key)

    def status(self, job_id: str, key: str) -> dict:
        final = self.export_dir(job_id, key)
        if (manifest := read_json_object(final / MANIFEST)) is not None:
            return {**manifest, "state": "succeeded", "reused": False}
        with self._lock:
            running = self._running.get((job_id, key))
            failed = self._failed.get((job_id, key))
        if running is not None:
            progress = read_json_object(running.work / PROGRESS) or {"stage": "starting", "fraction": 0.0}
            return {"id": key, "job_id": job_id, "state": "running", "progress": progress,
                    "started_at": running.started_at, **running.spec.model_dump(exclude={"modelfile", "model_card"})}
        if failed is not None:
            return failed
        raise NotFound(f"job {job_id} has no export {key!r}; start it with POST /api/v1/jobs/{job_id}/export",
                       loc=("path", "key"))

    def list(self, job_id: str) -> list[dict]:
        root = self._run_dir(job_id, finished=False) / EXPORTS_DIR
        children = sorted(root.iterdir()) if root.is_dir() else []
        done = [m for child in children if not child.name.startswith(".")
                and (m := read_json_object(child / MANIFEST)) is not None]
        with self._lock:
            keys = [key for (job, key) in [*self._running, *self._failed] if job == job_id]
        return [{**m, "state": "succeeded"} for m in done] + [self.status(job_id, key) for key in keys]

    def file(self, job_id: str, key: str, name: str) -> Path:
        folder = self.export_dir(job_id, key)
        path = folder / name
        if name.startswith(".") or "/" in name or not path.is_file() or not (folder / MANIFEST).is_file():
            raise NotFound(f"export {key!r} of job {job_id} has no file {name!r}", loc=("path", "name"))
        return path

    # -- the work ----------------------------------------------------------------------------------------------
    def _export(self, job_id: str, run_dir: Path, running: _Running) -> None:
        key = (job_id, running.spec.key)
        try:
            self._produce(job_id, run_dir, running.spec, running.work)
        except StudioError as exc:
            running.error = exc
            self._failed[key] = {"id": running.spec.key, "job_id": job_id, "state": "failed", "error": exc.message,
                                 "hint": exc.hint, "started_at": running.started_at, "finished_at": utc_now()}
        except Exception as exc:  # noqa: BLE001 - a thread must not die silently; the poller is told
            running.error = StudioError(f"export failed: {exc}")
            self._failed[key] = {"id": running.spec.key, "job_id": job_id, "state": "failed", "error": str(exc),
                                 "started_at": running.started_at, "finished_at": utc_now()}
        finally:
            with self._lock:
                self._running.pop(key, None)
            running.done.set()

    def _produce(self, job_id: str, run_dir: Path, spec: GgufExport | SafetensorsExport, work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log = run_dir / EXPORTS_DIR / f"{spec.key}.log"
        args: list[str | Path] = ["--run-dir", run_dir, "--out", work, "--format", spec.format]
        if isinstance(spec, GgufExport):
            args += ["--quantization", spec.quantization]
        else:
            args += ["--max-shard-size", spec.max_shard_size] + (["--dtype", spec.dtype] if spec.dtype else [])
        try:
            run_engine(build_engine_command("export", *args), what="export", timeout_s=EXPORT_TIMEOUT_S, log_path=log)
            (work / PROGRESS).unlink(missing_ok=True)
            notes = self._write_extras(run_dir, spec, work)
            files = sorted((p for p in work.iterdir() if p.is_file()), key=lambda p: p.name)
            manifest = {"id": spec.key, "job_id": job_id, **spec.model_dump(), "created_at": utc_now(),
                        "files": [{"name": p.name, "bytes": p.stat().st_size} for p in files],
                        "bytes": sum(p.stat().st_size for p in files), "notes": notes,
                        "download": f"/api/v1/jobs/{job_id}/exports/{spec.key}/download"}
            atomic_write_json(work / MANIFEST, manifest)
            final = run_dir / EXPORTS_DIR / spec.key
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_extras(self, run_dir: Path, spec: GgufExport | SafetensorsExport, work: Path) -> list[str]:
        """README.md and (GGUF) the Modelfile; returns notes about what they could not include."""
        notes: list[str] = []
        weights = rundir.RunDir(run_dir).weights()
        tokenizer_dir = weights.adapter or weights.model or Path(weights.base_model)
        if spec.format == "gguf":
            gguf = next(p.name for p in work.glob("*.gguf"))
            if spec.modelfile:
                template = read_chat_template(tokenizer_dir)
                rows = [row for ref in rundir.read_resolved_run(run_dir).datasets
                        for row in islice(iter_jsonl(ref.path), SYSTEM_PROMPT_ROWS)]
                text = modelfile.build_modelfile(gguf, template, modelfile.training_system_prompt(rows))
                (work / "Modelfile").write_text(text, encoding="utf-8")
                notes += [line[2:] for line in text.splitlines() if line.startswith("# no ")]
            line = f"This folder holds `{gguf}` ({spec.quantization}) for llama.cpp / Ollama / LM Studio."
        else:
            line = f"Safetensors weights ({spec.dtype or 'the base model dtype'}, shards up to {spec.max_shard_size})."
        if spec.model_card:
            (work / "README.md").write_text(build_model_card(run_dir, line), encoding="utf-8")
        return notes
