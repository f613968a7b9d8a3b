"""The Hugging Face Hub's file protocol as this studio uses it: list a model repository's files (with sizes and
sha256) through ``huggingface_hub``, and fetch one file resumably.

Endpoint (``HF_ENDPOINT``: the hub, a mirror or a test server) and token (one given with the request, else
``HF_TOKEN``, for gated models; it never leaves the server) are read at each call. A file streams into ``<staging>/.partial/<path>.part``, which an HTTP
Range request continues after a dropped connection or in a later attempt; it is verified by size and, for LFS
files, sha256 before it is moved into place. (huggingface_hub 2.x's ``hf_hub_download`` deletes a partial file on
any failure, so it cannot resume across attempts.) Every failure becomes one :mod:`backend.errors` domain error.
Torch-free.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.errors import Forbidden, NotFound, StudioError, Unavailable

DEFAULT_ENDPOINT = "https://huggingface.co"
PARTIAL_DIR = ".partial"
TRANSFER_ATTEMPTS = 4


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None = None  # the hub gives it for LFS files (weights)


class HubClient:
    """The hub as this studio may use it: endpoint and token from the server's environment, read at each call so
    ``HF_ENDPOINT`` (a mirror, or a test server) and ``HF_TOKEN`` changes apply without a restart."""

    @property
    def endpoint(self) -> str:
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @staticmethod
    def token(given: str | None = None) -> str | bool:
        """The token a request gave (a user's, for a gated model), else the server's ``HF_TOKEN``, else none."""
        return given or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or False

    def check_online(self) -> None:
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise Unavailable("the studio runs offline (HF_HUB_OFFLINE is set), so it does not contact a model hub",
                              loc=("body", "repo_id"), hint="unset HF_HUB_OFFLINE and restart the studio, or put "
                              "the model folder under the models root by hand")

    def list_files(self, repo_id: str, revision: str, token: str | None = None) -> tuple[str, list[HubFile]]:
        """The commit ``revision`` resolves to and every file of the repository there, with sizes."""
        self.check_online()
        from huggingface_hub import HfApi

        try:
            info = HfApi(endpoint=self.endpoint, token=self.token(token)).model_info(
                repo_id, revision=revision, files_metadata=True, timeout=30)
        except Exception as exc:  # noqa: BLE001 - every hub/transport failure becomes one domain error
            raise hub_error(exc, repo_id, revision, self.endpoint) from None
        files = [HubFile(s.rfilename, int(s.size or 0), getattr(s.lfs, "sha256", None) if s.lfs else None)
                 for s in info.siblings or []]
        return str(info.sha or revision), files

    def download_file(self, repo_id: str, commit: str, hub_file: HubFile, staging: Path,
                      cancel: threading.Event, token: str | None = None) -> None:
        """Fetch one file into ``staging``, continuing its ``.part`` file with a Range request (after a dropped
        connection here, or a failed/cancelled/interrupted earlier attempt); verified by size and, where the hub
        gives one, sha256."""
        part = partial_path(staging, hub_file.path)
        part.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(TRANSFER_ATTEMPTS):
            try:
                self._transfer(repo_id, commit, hub_file, part, cancel, token)
                break
            except httpx.TransportError as exc:
                if attempt == TRANSFER_ATTEMPTS - 1:
                    raise hub_error(exc, repo_id, commit, self.endpoint) from None
                time.sleep(0.5 * (attempt + 1))
        _verify(part, hub_file)
        final = staging / hub_file.path
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)

    def _transfer(self, repo_id: str, commit: str, hub_file: HubFile, part: Path, cancel: threading.Event,
                  token: str | None) -> None:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        have = part.stat().st_size if part.exists() else 0
        if have > hub_file.size:
            part.unlink()
            have = 0
        if have == hub_file.size:
            return
        headers = build_hf_headers(token=self.token(token))
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
                         loc=("body", "repo_id"), hint="accept the model's licence on its hub page, then give a token "
                         "with access to it (with the download, or as HF_TOKEN in the studio's environment; it stays "
                         "on the server)")
    if isinstance(exc, RevisionNotFoundError):
        return NotFound(f"{repo_id} has no revision {revision!r}", loc=("body", "revision"))
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return NotFound(f"no model {repo_id!r} on {endpoint} (or it is private)", loc=("body", "repo_id"),
                        hint="check the id (org/name, as on the model's hub page); for a private model give a token")
    if status in (401, 403):
        return Forbidden(f"{endpoint} refused access to {repo_id} (HTTP {status})", loc=("body", "repo_id"),
                         hint="give a token with access (with the download, or as HF_TOKEN in the "
                         "studio's environment)")
    if isinstance(exc, OfflineModeIsEnabled):
        return Unavailable("huggingface_hub is in offline mode (HF_HUB_OFFLINE)", loc=("body", "repo_id"))
    if isinstance(exc, HfHubHTTPError):
        return Unavailable(f"{endpoint} answered HTTP {status} for {repo_id}", loc=("body", "repo_id"),
                           hint="try again later")
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return Unavailable(f"cannot reach the model hub at {endpoint}: {detail}", loc=("body", "repo_id"),
                       hint="check the network, or set HF_ENDPOINT to a reachable mirror; the studio keeps working "
                       "offline with the models already under the models root")
