"""The model-download calls of :class:`app.client.TunesmithClient` (the Models tab), as a mixin so the client
module stays small; they use the client's ``_json`` / ``_list`` plumbing and raise its ``ApiError``."""

from __future__ import annotations

from typing import Any


def download_body(repo_id: str, revision: str | None, source: str, token: str | None) -> dict[str, Any]:
    """The API's download request; an empty revision or token is left out (main; the server's HF_TOKEN)."""
    body: dict[str, Any] = {"repo_id": (repo_id or "").strip(), "source": source}
    if revision and revision.strip():
        body["revision"] = revision.strip()
    if token and token.strip():
        body["token"] = token.strip()  # for a gated model; the server keeps it for this download only
    return body


class ModelDownloadCalls:
    """``/api/v1/models/download``: plan (size first), start or resume, follow, list, cancel."""

    _json: Any
    _list: Any

    def plan_model_download(self, repo_id: str, *, revision: str | None = None, source: str = "huggingface",
                            token: str | None = None) -> dict[str, Any]:
        """What downloading ``repo_id`` would fetch: ``files``, ``total_bytes``, ``present_bytes`` (an earlier
        attempt's), ``needed_bytes``, ``free_bytes``, ``reserve_bytes``, ``fits``, ``model_id``; starts nothing.
        A POST, so a token travels in the body, never in a URL."""
        return self._json("POST", "/models/download/plan", json=download_body(repo_id, revision, source, token),
                          timeout=60.0)

    def start_model_download(self, repo_id: str, *, revision: str | None = None, source: str = "huggingface",
                             token: str | None = None) -> dict[str, Any]:
        """Start (or resume) a download into the models root: its state (``id``, ``state``, ``bytes_done``...)."""
        return self._json("POST", "/models/download", json=download_body(repo_id, revision, source, token),
                          timeout=60.0)

    def model_download_sources(self) -> list[dict[str, Any]]:
        """``{"name", "available", "endpoint", "reason"}`` for each hub (huggingface, modelscope)."""
        return self._list("/models/download/sources")

    def get_model_download(self, download_id: str) -> dict[str, Any]:
        return self._json("GET", f"/models/download/{download_id}")

    def list_model_downloads(self) -> list[dict[str, Any]]:
        """This studio's downloads (and unfinished ones from before a restart, ``interrupted``), newest first."""
        return self._list("/models/download")

    def cancel_model_download(self, download_id: str) -> dict[str, Any]:
        return self._json("POST", f"/models/download/{download_id}/cancel")
