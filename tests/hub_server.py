"""A small local HTTP server speaking enough of the Hugging Face Hub's file protocol for huggingface_hub's
``HfApi.model_info`` and ``hf_hub_download``:

    GET  /api/models/{org}/{name}[/revision/{rev}]   -> {"id", "sha", "siblings": [{"rfilename", "size"}]}
    HEAD /{org}/{name}/resolve/{rev}/{path}          -> X-Repo-Commit, ETag, Content-Length
    GET  /{org}/{name}/resolve/{rev}/{path}          -> the bytes (206 + Content-Range for a Range request)

Errors carry the hub's ``X-Error-Code`` (RepoNotFound, RevisionNotFound, GatedRepo, EntryNotFound). Test knobs:
``gated`` repos need ``Authorization: Bearer <token>``; ``cut_first_get`` drops the connection after N bytes on
the first GET of a file (a flaky network); ``pause_after`` sends that many bytes of a file, waits ``pause_s``,
then the rest (time to cancel mid-file; huggingface_hub writes in 10 MiB chunks, so only a file larger than that
leaves a partial file behind). Every request
is recorded in ``requests`` as (method, path, Range header).

    with HubServer({"org/tiny": model_dir}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class HubServer:
    def __init__(self, repos: dict[str, Path], *, gated: dict[str, str] | None = None,
                 cut_first_get: dict[str, int] | None = None, pause_after: dict[str, int] | None = None,
                 pause_s: float = 2.0) -> None:
        self.repos = {repo: {p.relative_to(folder).as_posix(): p.read_bytes()
                             for p in sorted(folder.rglob("*")) if p.is_file()} for repo, folder in repos.items()}
        self.commits = {repo: hashlib.sha1(repo.encode()).hexdigest() for repo in repos}
        self.gated = gated or {}
        self.cut_first_get = dict(cut_first_get or {})
        self.pause_after = pause_after or {}
        self.pause_s = pause_s
        self.requests: list[tuple[str, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

        return Handler

    def _error(self, req: BaseHTTPRequestHandler, status: int, code: str) -> None:
        body = json.dumps({"error": code}).encode()
        req.send_response(status)
        req.send_header("X-Error-Code", code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)

    def _answer(self, req: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        self.requests.append((req.command, path, req.headers.get("Range")))
        parts = path.strip("/").split("/")
        api = parts[:2] == ["api", "models"]
        repo = "/".join(parts[2:4] if api else parts[0:2])
        if repo not in self.repos:
            return self._error(req, 404, "RepoNotFound")
        token = self.gated.get(repo)
        if token and req.headers.get("Authorization") != f"Bearer {token}":
            return self._error(req, 403, "GatedRepo")
        if api:
            revision = parts[5] if len(parts) > 5 and parts[4] == "revision" else "main"
            return self._model_info(req, repo, revision)
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(req, 404, "EntryNotFound")
        return self._file(req, repo, parts[3], "/".join(parts[4:]), head)

    def _model_info(self, req: BaseHTTPRequestHandler, repo: str, revision: str) -> None:
        if revision not in ("main", self.commits[repo]):
            return self._error(req, 404, "RevisionNotFound")
        files = self.repos[repo]
        body = json.dumps({"id": repo, "modelId": repo, "sha": self.commits[repo], "private": False,
                           "siblings": [self._sibling(name, data) for name, data in files.items()]}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    @staticmethod
    def _sibling(name: str, data: bytes) -> dict:
        """A file entry as ``?blobs=true`` lists it; weights are LFS files, with their sha256."""
        entry = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
        if name.endswith(".safetensors"):
            entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
        return entry

    def _file(self, req: BaseHTTPRequestHandler, repo: str, revision: str, name: str, head: bool) -> None:
        if revision not in ("main", self.commits[repo]):
            return self._error(req, 404, "RevisionNotFound")
        data = self.repos[repo].get(name)
        if data is None:
            return self._error(req, 404, "EntryNotFound")
        start = 0
        ranged = req.headers.get("Range")
        if ranged and not head:
            start = int(ranged.removeprefix("bytes=").split("-")[0])
        req.send_response(206 if start else 200)
        req.send_header("X-Repo-Commit", self.commits[repo])
        req.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        req.send_header("Content-Length", str(len(data) - start))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if head:
            return
        body = data[start:]
        cut = self.cut_first_get.pop(name, None)
        if cut is not None:
            req.wfile.write(body[:cut])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(2)
            return
        pause = self.pause_after.get(name)
        if pause is not None and pause > start:
            req.wfile.write(body[:pause - start])
            req.wfile.flush()
            time.sleep(self.pause_s)
            body = body[pause - start:]
        req.wfile.write(body)
