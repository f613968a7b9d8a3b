"""Download a model from the Hugging Face Hub (or a mirror: ``HF_ENDPOINT``) into the studio's models root.

A download is planned first (``huggingface_hub``'s model info: which files, how many bytes, does it fit on the
disk), then runs in a background thread, one file at a time, into ``<models>/.downloads/<org--name>/``.
The model list ignores dot-folders, so a half-downloaded model never shows up; when every file is there the
folder is renamed to ``<models>/<org--name>`` and appears in ``GET /api/v1/models``.

Resumable: each file streams into a ``.part`` file that an HTTP Range request continues (after a dropped
connection, and when the same download is started again after a failure, a cancel or a studio restart), and
finished files are kept, so only what is missing is fetched. The transfer is ours rather than
``hf_hub_download``'s because huggingface_hub 2.x deletes a partial file on any failure.

Only what training needs is fetched: configs, tokenizer files and safetensors weights (``*.bin`` only when a
repository has no safetensors); no ``*.py`` (the studio never runs code shipped with a model). A token for gated
models is read from the server's environment (``HF_TOKEN``) and never leaves it. Torch-free: runs in the web
process.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import httpx

from backend.errors import (
    Conflict,
    Forbidden,
    InsufficientStorage,
    Invalid,
    NotFound,
    StudioError,
    Unavailable,
)
from backend.settings import Settings

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja", "tokenizer*")
FALLBACK_WEIGHTS = ("*.bin",)
SKIPPED_DIRS = ("original/", ".")  # Meta's consolidated checkpoints; hidden files
STAGING = ".downloads"
PARTIAL_DIR = ".partial"
TRANSFER_ATTEMPTS = 4
SOURCE_FILE = ".tunesmith-download.json"
DEFAULT_RESERVE_BYTES = 512 * 1024**2
Source = Literal["huggingface", "modelscope"]
State = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None = None  # the hub gives it for LFS files (weights)


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
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


def model_id_for(repo_id: str) -> str:
    """The folder (and model id) a hub repository is kept under: ``org/name`` -> ``org--name``."""
    return repo_id.replace("/", "--")


def select_files(files: list[HubFile]) -> list[HubFile]:
    """The files a training run needs: configs, tokenizer, safetensors weights (``*.bin`` only without them)."""
    visible = [f for f in files if not f.path.startswith(SKIPPED_DIRS) and "/." not in f.path]

    def matching(patterns: tuple[str, ...]) -> list[HubFile]:
        return [f for f in visible if any(fnmatch.fnmatch(Path(f.path).name, p) for p in patterns)]

    chosen = matching(MODEL_FILES)
    if not any(f.path.endswith(".safetensors") for f in chosen):
        chosen += matching(FALLBACK_WEIGHTS)
    return sorted(chosen, key=lambda f: f.path)


class HubClient:
    """The hub as this studio may use it: endpoint and token from the server's environment, read at each call so
    ``HF_ENDPOINT`` (a mirror, or a test server) and ``HF_TOKEN`` changes apply without a restart."""

    @property
    def endpoint(self) -> str:
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @staticmethod
    def token() -> str | bool:
        return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or False

    def check_online(self) -> None:
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise Unavailable("the studio runs offline (HF_HUB_OFFLINE is set), so it does not contact a model hub",
                              loc=("body", "repo_id"), hint="unset HF_HUB_OFFLINE and restart the studio, or put "
                              "the model folder under the models root by hand")

    def list_files(self, repo_id: str, revision: str) -> tuple[str, list[HubFile]]:
        """The commit ``revision`` resolves to and every file of the repository there, with sizes."""
        self.check_online()
        from huggingface_hub import HfApi

        try:
            info = HfApi(endpoint=self.endpoint, token=self.token()).model_info(
                repo_id, revision=revision, files_metadata=True, timeout=30)
        except Exception as exc:  # noqa: BLE001 - every hub/transport failure becomes one domain error
            raise hub_error(exc, repo_id, revision, self.endpoint) from None
        files = [HubFile(s.rfilename, int(s.size or 0), getattr(s.lfs, "sha256", None) if s.lfs else None)
                 for s in info.siblings or []]
        return str(info.sha or revision), files

    def download_file(self, repo_id: str, commit: str, hub_file: HubFile, staging: Path,
                      cancel: threading.Event) -> None:
        """Fetch one file into ``staging``, continuing its ``.part`` file with a Range request (after a dropped
        connection here, or a failed/cancelled/interrupted earlier attempt); verified by size and, where the hub
        gives one, sha256."""
        part = partial_path(staging, hub_file.path)
        part.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(TRANSFER_ATTEMPTS):
            try:
                self._transfer(repo_id, commit, hub_file, part, cancel)
                break
            except httpx.TransportError as exc:
                if attempt == TRANSFER_ATTEMPTS - 1:
                    raise hub_error(exc, repo_id, commit, self.endpoint) from None
                time.sleep(0.5 * (attempt + 1))
        _verify(part, hub_file)
        final = staging / hub_file.path
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)

    def _transfer(self, repo_id: str, commit: str, hub_file: HubFile, part: Path, cancel: threading.Event) -> None:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        have = part.stat().st_size if part.exists() else 0
        if have > hub_file.size:
            part.unlink()
            have = 0
        if have == hub_file.size:
            return
        headers = build_hf_headers(token=self.token())
        if have:
            headers["Range"] = f"bytes={have}-"
        url = hf_hub_url(repo_id, hub_file.path, revision=commit, endpoint=self.endpoint)
        # httpx drops the Authorization header when the hub redirects to another host (its CDN)
        with httpx.stream("GET", url, headers=headers, follow_redirects=True,
                          timeout=httpx.Timeout(30.0, read=120.0)) as response:
            if response.status_code not in (200, 206):
                raise hub_error(_StatusError(response.status_code), repo_id, commit, self.endpoint)
            append = have > 0 and response.status_code == 206  # a 200 means the server ignored the Range
            with part.open("ab" if append else "wb") as out:
                for chunk in response.iter_bytes():  # as the network delivers it, so a drop keeps what came
                    if cancel.is_set():
                        raise DownloadCancelled()
                    out.write(chunk)


class DownloadCancelled(Exception):
    pass


class _StatusError(Exception):
    """An HTTP status from a file request, shaped like huggingface_hub's errors for :func:`hub_error`."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("Response", (), {"status_code": status})()


def partial_path(staging: Path, path: str) -> Path:
    return staging / PARTIAL_DIR / f"{path}.part"


def _verify(part: Path, hub_file: HubFile) -> None:
    size = part.stat().st_size
    if size != hub_file.size:
        part.unlink()
        raise Unavailable(f"{hub_file.path} arrived with {size} bytes instead of {hub_file.size}; the partial file "
                          "was dropped", loc=("body", "repo_id"), hint="start the download again")
    if hub_file.sha256:
        digest = hashlib.sha256()
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != hub_file.sha256:
            part.unlink()
            raise Unavailable(f"{hub_file.path} does not match the hub's sha256; the file was dropped",
                              loc=("body", "repo_id"), hint="start the download again")


def hub_error(exc: Exception, repo_id: str, revision: str, endpoint: str) -> StudioError:
    """A hub or transport failure as the domain error a client can act on."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return Forbidden(f"{repo_id} is a gated model and this studio's token has no access to it",
                         loc=("body", "repo_id"), hint="accept the model's licence on its hub page, then set HF_TOKEN "
                         "in the studio's environment (it stays on the server) and restart the studio")
    if isinstance(exc, RevisionNotFoundError):
        return NotFound(f"{repo_id} has no revision {revision!r}", loc=("body", "revision"))
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return NotFound(f"no model {repo_id!r} on {endpoint} (or it is private)", loc=("body", "repo_id"),
                        hint="check the id (org/name, as on the model's hub page); for a private model set HF_TOKEN")
    if status in (401, 403):
        return Forbidden(f"{endpoint} refused access to {repo_id} (HTTP {status})", loc=("body", "repo_id"),
                         hint="set HF_TOKEN in the studio's environment to a token with access")
    if isinstance(exc, OfflineModeIsEnabled):
        return Unavailable("huggingface_hub is in offline mode (HF_HUB_OFFLINE)", loc=("body", "repo_id"))
    if isinstance(exc, HfHubHTTPError):
        return Unavailable(f"{endpoint} answered HTTP {status} for {repo_id}", loc=("body", "repo_id"),
                           hint="try again later")
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return Unavailable(f"cannot reach the model hub at {endpoint}: {detail}", loc=("body", "repo_id"),
                       hint="check the network, or set HF_ENDPOINT to a reachable mirror; the studio keeps working "
                       "offline with the models already under the models root")


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

    def plan(self, repo_id: str, revision: str | None = None, source: Source = "huggingface") -> DownloadPlan:
        repo_id, revision = check_request(repo_id, revision, source)
        model_id = model_id_for(repo_id)
        commit, files = self.hub.list_files(repo_id, revision)
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

    def start(self, repo_id: str, revision: str | None = None, source: Source = "huggingface") -> DownloadJob:
        plan = self.plan(repo_id, revision, source)
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
            job = DownloadJob(id="dl_" + secrets.token_hex(5), plan=plan)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"download-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> DownloadJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no download {job_id!r} (downloads are listed until the studio restarts; start it again "
                           "to resume)", loc=("path", "job_id"))
        return job

    def list(self) -> list[DownloadJob]:
        return sorted(self._jobs.values(), key=lambda j: j.started_at, reverse=True)

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
            for hub_file in plan.files:
                if job.cancel.is_set():
                    raise DownloadCancelled()
                done = staging / hub_file.path
                if not (done.is_file() and done.stat().st_size == hub_file.size):
                    self.hub.download_file(plan.repo_id, plan.commit, hub_file, staging, job.cancel)
            self._publish(plan, staging)
            job.state = "succeeded"
        except DownloadCancelled:
            job.state, job.error = "cancelled", "cancelled; what was downloaded is kept, start it again to resume"
        except StudioError as exc:
            job.state, job.error, job.hint = "failed", exc.message, exc.hint or "start the download again to resume"
        except OSError as exc:
            job.state, job.error = "failed", f"cannot write the model files: {exc}"
            job.hint = "free disk space or fix the models folder's permissions, then start the download again"
        finally:
            job.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def _publish(self, plan: DownloadPlan, staging: Path) -> None:
        """Drop huggingface_hub's bookkeeping, record where the model came from, rename into the model list."""
        shutil.rmtree(staging / PARTIAL_DIR, ignore_errors=True)
        (staging / SOURCE_FILE).write_text(json.dumps({
            "repo_id": plan.repo_id, "revision": plan.revision, "commit": plan.commit,
            "endpoint": self.hub.endpoint, "files": [f.path for f in plan.files]}, indent=2), encoding="utf-8")
        target = self.settings.models_dir / plan.model_id
        if target.exists():
            raise Conflict(f"{target.name} appeared in the models root while downloading; the download is kept in "
                           f"{staging}", loc=("body", "repo_id"))
        staging.rename(target)


def check_request(repo_id: str, revision: str | None, source: Source) -> tuple[str, str]:
    repo_id = (repo_id or "").strip()
    if source == "modelscope":
        raise Unavailable("downloads from ModelScope need its client (pip install modelscope), which this studio "
                          "does not have", loc=("body", "source"), hint="use source 'huggingface', or a ModelScope "
                          "mirror of the hub API through HF_ENDPOINT")
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
