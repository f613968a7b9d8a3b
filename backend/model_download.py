"""Download a model from the Hugging Face Hub (or a mirror: ``HF_ENDPOINT``) into the studio's models root.

A download is planned first (``huggingface_hub``'s model info: which files, how many bytes, does it fit on the
disk), then runs in a background thread, one file at a time, into ``<models>/.downloads/<org--name>/``.
The model list ignores dot-folders, so a half-downloaded model never shows up; when every file is there the
folder is renamed to ``<models>/<org--name>`` and appears in ``GET /api/v1/models``.

Resumable: each file streams into a ``.part`` file that an HTTP Range request continues (after a dropped
connection, and when the same download is started again after a failure, a cancel or a studio restart), and
finished files are kept, so only what is missing is fetched (``backend.hub_files``). A record in the staging
folder lets a restarted studio list an unfinished download as ``interrupted``.

Only what training needs is fetched: configs, tokenizer files and safetensors weights (``*.bin`` only when a
repository has no safetensors); no ``*.py`` (the studio never runs code shipped with a model). A token for gated
models comes with the request (kept in memory for that download only, never written or echoed) or from the
server's environment (``HF_TOKEN``); it never leaves the server. Torch-free: runs in the web
process.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Literal

from backend.catalog import SOURCE_FILE
from backend.errors import (
    Conflict,
    InsufficientStorage,
    Invalid,
    NotFound,
    StudioError,
    Unavailable,
)
from backend.hub_files import (
    PARTIAL_DIR,
    DownloadCancelled,
    HubClient,
    HubFile,
    partial_path,
)
from backend.settings import Settings

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja", "tokenizer*")
FALLBACK_WEIGHTS = ("*.bin",)
SKIPPED_DIRS = ("original/", ".")  # Meta's consolidated checkpoints; hidden files
STAGING = ".downloads"
DEFAULT_RESERVE_BYTES = 512 * 1024**2
Source = Literal["huggingface", "modelscope"]
State = Literal["running", "succeeded", "failed", "cancelled", "interrupted"]
INTERRUPTED = "the studio stopped during this download; start it again to resume (what was fetched is kept)"


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of ``repo_id`` at ``revision`` would fetch, and whether it fits on the disk."""

    repo_id: str
    revision: str
    commit: str
    model_id: str
    files: tuple[HubFile, ...]
    total_bytes: int
    present_bytes: int
    free_bytes: int
    reserve_bytes: int

    @property
    def needed_bytes(self) -> int:
        return max(self.total_bytes - self.present_bytes, 0)

    @property
    def fits(self) -> bool:
        return self.needed_bytes + self.reserve_bytes <= self.free_bytes


@dataclass
class DownloadJob:
    id: str
    plan: DownloadPlan
    state: State = "running"
    error: str | None = None
    hint: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished_at: str | None = None
    current_file: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    token: str | None = field(default=None, repr=False)  # a user's hub token: in memory only, never in the record
    clock_start: float = field(default_factory=time.monotonic, repr=False)

    def rate(self, bytes_done: int) -> float | None:
        """Bytes per second fetched by this attempt (what an earlier attempt left does not count), or None."""
        elapsed = time.monotonic() - self.clock_start
        fetched = bytes_done - self.plan.present_bytes
        return fetched / elapsed if self.state == "running" and elapsed > 1 and fetched > 0 else None


def model_id_for(repo_id: str) -> str:
    """The folder (and model id) a hub repository is kept under: ``org/name`` -> ``org--name``."""
    return repo_id.replace("/", "--")


def select_files(files: list[HubFile]) -> list[HubFile]:
    """The files a training run needs: configs, tokenizer, safetensors weights (``*.bin`` only without them).
    A listed path that would land outside the model folder (``../x``, ``/etc/x``) refuses the whole download."""
    for f in files:
        parts = PurePosixPath(f.path).parts
        if not parts or f.path.startswith("/") or "\\" in f.path or ".." in parts or f.size < 0:
            raise Invalid(f"the hub lists a file {f.path!r} that would be written outside the model folder; "
                          "nothing was downloaded", loc=("body", "repo_id"),
                          hint="check HF_ENDPOINT: the hub and its mirrors never list such paths")
    visible = [f for f in files if not f.path.startswith(SKIPPED_DIRS) and "/." not in f.path]

    def matching(patterns: tuple[str, ...]) -> list[HubFile]:
        return [f for f in visible if any(fnmatch.fnmatch(Path(f.path).name, p) for p in patterns)]

    chosen = matching(MODEL_FILES)
    if not any(f.path.endswith(".safetensors") for f in chosen):
        chosen += matching(FALLBACK_WEIGHTS)
    return sorted(chosen, key=lambda f: f.path)


class ModelDownloads:
    """Plans, runs and reports hub downloads; one at a time per model, several models at once."""

    def __init__(self, settings: Settings, hub: HubClient | None = None) -> None:
        self.settings = settings
        self.hub = hub or HubClient()
        self._jobs: dict[str, DownloadJob] = {}
        self._lock = threading.Lock()

    @property
    def reserve_bytes(self) -> int:
        """Space kept free on the models disk (``TUNESMITH_DOWNLOAD_RESERVE_BYTES``), for runs and exports."""
        raw = os.environ.get("TUNESMITH_DOWNLOAD_RESERVE_BYTES", "").strip()
        return int(raw) if raw.isdigit() else DEFAULT_RESERVE_BYTES

    def staging_dir(self, model_id: str) -> Path:
        return self.settings.models_dir / STAGING / model_id

    def plan(self, repo_id: str, revision: str | None = None, source: Source = "huggingface",
             token: str | None = None) -> DownloadPlan:
        repo_id, revision = check_request(repo_id, revision, source)
        model_id = model_id_for(repo_id)
        commit, files = self.hub.list_files(repo_id, revision, token)
        chosen = select_files(files)
        if not any(f.path.endswith((".safetensors", ".bin")) for f in chosen) or not any(
                f.path == "config.json" for f in chosen):
            raise Invalid(f"{repo_id} has no config.json with safetensors or .bin weights at its top level, so it is "
                          "not a Hugging Face-format model the studio can train", loc=("body", "repo_id"),
                          hint="pick the repository of the model in transformers format (not GGUF/ONNX/MLX)")
        staging = self.staging_dir(model_id)
        self.settings.models_dir.mkdir(parents=True, exist_ok=True)
        return DownloadPlan(repo_id=repo_id, revision=revision, commit=commit, model_id=model_id,
                            files=tuple(chosen), total_bytes=sum(f.size for f in chosen),
                            present_bytes=bytes_present(staging, chosen),
                            free_bytes=shutil.disk_usage(self.settings.models_dir).free,
                            reserve_bytes=self.reserve_bytes)

    def start(self, repo_id: str, revision: str | None = None, source: Source = "huggingface",
              token: str | None = None) -> DownloadJob:
        plan = self.plan(repo_id, revision, source, token)
        target = self.settings.models_dir / plan.model_id
        if target.exists():
            raise Conflict(f"{repo_id} is already in the models root as {plan.model_id!r}",
                           loc=("body", "repo_id"), hint="delete or rename that folder to download it again")
        if not plan.fits:
            raise InsufficientStorage(
                f"{repo_id} needs {_gib(plan.needed_bytes)} more and the models disk has {_gib(plan.free_bytes)} "
                f"free, of which {_gib(plan.reserve_bytes)} stay reserved", loc=("body", "repo_id"),
                hint="free disk space, or point TUNESMITH_MODELS_DIR at a larger disk")
        with self._lock:
            running = [j for j in self._jobs.values() if j.plan.model_id == plan.model_id and j.state == "running"]
            if running:
                raise Conflict(f"{repo_id} is already downloading (download {running[0].id})",
                               loc=("body", "repo_id"))
            job = DownloadJob(id="dl_" + secrets.token_hex(5), plan=plan, token=token)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"download-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> DownloadJob:
        job = self._jobs.get(job_id) or next((j for j in self._interrupted() if j.id == job_id), None)
        if job is None:
            raise NotFound(f"no download {job_id!r}", loc=("path", "job_id"))
        return job

    def list_jobs(self) -> list[DownloadJob]:
        """This process's downloads, and unfinished ones an earlier studio process left (state interrupted)."""
        return sorted([*self._jobs.values(), *self._interrupted()], key=lambda j: j.started_at, reverse=True)

    def _interrupted(self) -> list[DownloadJob]:
        """Staging folders whose download no thread of this process runs: from the record each one holds."""
        staging_root = self.settings.models_dir / STAGING
        known = {job.plan.model_id for job in self._jobs.values()}
        jobs = []
        for record_path in sorted(staging_root.glob(f"*/{SOURCE_FILE}")) if staging_root.is_dir() else []:
            if record_path.parent.name in known:
                continue
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
                plan = DownloadPlan(**{**record["plan"], "files": tuple(HubFile(**f) for f in record["plan"]["files"])})
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a record this studio wrote
            jobs.append(DownloadJob(id=record["id"], plan=plan, state="interrupted", error=INTERRUPTED,
                                    started_at=record["started_at"]))
        return jobs

    def cancel(self, job_id: str) -> DownloadJob:
        job = self.get(job_id)
        if job.state != "running":
            raise Conflict(f"download {job_id} is {job.state}, not running", loc=("path", "job_id"))
        job.cancel.set()
        return job

    def bytes_done(self, job: DownloadJob) -> int:
        if job.state == "succeeded":
            return job.plan.total_bytes
        return bytes_present(self.staging_dir(job.plan.model_id), job.plan.files)

    def _run(self, job: DownloadJob) -> None:
        plan = job.plan
        staging = self.staging_dir(plan.model_id)
        try:
            staging.mkdir(parents=True, exist_ok=True)
            self._write_record(job, staging)
            for hub_file in plan.files:
                if job.cancel.is_set():
                    raise DownloadCancelled()
                done = staging / hub_file.path
                if not (done.is_file() and done.stat().st_size == hub_file.size):
                    job.current_file = hub_file.path
                    self.hub.download_file(plan.repo_id, plan.commit, hub_file, staging, job.cancel, job.token)
            self._publish(plan, staging)
            job.state, job.current_file = "succeeded", None
        except DownloadCancelled:
            job.state, job.error = "cancelled", "cancelled; what was downloaded is kept, start it again to resume"
        except StudioError as exc:
            job.state, job.error, job.hint = "failed", exc.message, exc.hint or "start the download again to resume"
        except OSError as exc:
            job.state, job.error = "failed", f"cannot write the model files: {exc}"
            job.hint = "free disk space or fix the models folder's permissions, then start the download again"
        except Exception as exc:  # noqa: BLE001 - a thread that dies silently would leave the job "running" forever
            job.state, job.error = "failed", f"the download stopped: {type(exc).__name__}: {exc}"
            job.hint = "start the download again to resume; if it fails the same way, report it with this message"
        finally:
            job.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            job.token = None  # not kept past the download

    def _write_record(self, job: DownloadJob, staging: Path) -> None:
        """What is being downloaded, from where: lets a later studio process list an interrupted download, and
        stays in the model folder afterwards as its provenance."""
        record = {"id": job.id, "started_at": job.started_at, "endpoint": self.hub.endpoint, "plan": asdict(job.plan)}
        tmp = staging / f"{SOURCE_FILE}.tmp"
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, staging / SOURCE_FILE)

    def _publish(self, plan: DownloadPlan, staging: Path) -> None:
        """Drop the partial-files folder and rename the complete model into the model list."""
        shutil.rmtree(staging / PARTIAL_DIR, ignore_errors=True)
        target = self.settings.models_dir / plan.model_id
        if target.exists():
            raise Conflict(f"{target.name} appeared in the models root while downloading; the download is kept in "
                           f"{staging}", loc=("body", "repo_id"))
        staging.rename(target)


MODELSCOPE_MISSING = "downloads from ModelScope need its client (pip install modelscope), which this studio does not have"


@dataclass(frozen=True)
class SourceInfo:
    """A hub the studio can (or cannot) download from, for a client to offer only what works."""

    name: Source
    available: bool
    endpoint: str | None  # where files come from (HF_ENDPOINT or the hub), when available
    reason: str | None  # why not, when not


def download_sources(hub: HubClient) -> list[SourceInfo]:
    online = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")
    return [SourceInfo("huggingface", online, hub.endpoint if online else None,
                       None if online else "the studio runs offline (HF_HUB_OFFLINE is set)"),
            SourceInfo("modelscope", False, None, MODELSCOPE_MISSING)]


def check_request(repo_id: str, revision: str | None, source: Source) -> tuple[str, str]:
    repo_id = (repo_id or "").strip()
    if source == "modelscope":
        raise Unavailable(MODELSCOPE_MISSING, loc=("body", "source"), hint="use source 'huggingface', or a "
                          "ModelScope mirror of the hub API through HF_ENDPOINT")
    if not REPO_ID.match(repo_id) or ".." in repo_id:
        raise Invalid(f"repo_id {repo_id!r} is not a hub model id; write it as org/name, e.g. "
                      "HuggingFaceTB/SmolLM2-135M-Instruct", loc=("body", "repo_id"))
    revision = (revision or "main").strip()
    if not REVISION.match(revision) or ".." in revision:
        raise Invalid(f"revision {revision!r} is not a branch, tag or commit name", loc=("body", "revision"))
    return repo_id, revision


def bytes_present(staging: Path, files: tuple[HubFile, ...] | list[HubFile]) -> int:
    """Bytes already on disk: finished files plus the partial ``.part`` files of unfinished ones."""
    total = 0
    for f in files:
        done, part = staging / f.path, partial_path(staging, f.path)
        if done.is_file() and done.stat().st_size == f.size:
            total += f.size
        elif part.is_file():
            total += min(part.stat().st_size, f.size)
    return total


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"
