"""A typed HTTP client for the Tunesmith API (``/api/v1``).

The studio UI talks to the backend only through this module: no training state lives in the UI.
Every failure (HTTP error, unreachable server, malformed reply) is raised as :class:`ApiError`,
whose ``str()`` is a readable message meant to be shown to a person as-is.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from app.api_types import (  # noqa: F401 - re-exported: pages import these from app.client
    TERMINAL_STATES,
    ChatReply,
    ChatTarget,
    Dataset,
    DatasetDetail,
    Health,
    ImportResult,
    ImportSkipped,
    Job,
    JobState,
    MergeResult,
    Message,
    MetricRow,
    Model,
    PreviewRow,
    UploadedDataset,
)
from app.client_errors import ApiError, parse_error  # noqa: F401 - re-exported: pages import them from here
from app.client_models import ModelDownloadCalls
from app.progress_file import ProgressFile, ProgressFn


class TunesmithClient(ModelDownloadCalls):
    """Synchronous client for one Tunesmith API base URL, e.g. ``http://127.0.0.1:7860/api/v1``."""

    def __init__(self, api_url: str, *, timeout: float = 15.0, transport: httpx.BaseTransport | None = None,
                 token: str | None = None):
        self.api_url = api_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else None  # the studio's TUNESMITH_TOKEN
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout, transport=transport, headers=headers)

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(f"The API did not answer in time ({method} {path}): {exc}") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"Cannot reach the Tunesmith API at {self.api_url}: {exc}") from exc
        if response.is_error:
            raise parse_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"The API sent a reply that is not JSON ({method} {path})") from exc

    def _list(self, path: str, **kwargs: Any) -> list[Any]:
        body = self._json("GET", path, **kwargs)
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            return body["data"]
        if isinstance(body, list):
            return body
        raise ApiError(f"Unexpected reply from GET {path}: expected {{'data': [...]}}")

    def _download(self, path: str, dest: Path, *, timeout: float | None) -> Path:
        """Stream a binary endpoint into ``dest`` (written to ``dest.part`` first, then renamed)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        try:
            with self._http.stream("GET", path, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise parse_error(response)
                with partial.open("wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise ApiError(f"Download of {path} failed: {exc}") from exc
        shutil.move(partial, dest)
        return dest

    # -- system ---------------------------------------------------------------------------------

    def health(self) -> Health:
        return self._json("GET", "/health", timeout=5.0)

    def list_models(self) -> list[Model]:
        return self._list("/models")

    def suggest_settings(self, model: str) -> dict[str, Any]:
        """``{"model", "parameters", "device", "settings", "notes"}``: settings that suit ``model`` on this machine."""
        return self._json("GET", "/models/suggest", params={"model": model})

    def config_from_yaml(self, text: str) -> dict[str, Any]:
        """A Tunesmith run config or a LLaMA-Factory training YAML as this studio's full run config:
        ``{"config", "warnings": [{"key", "msg"}], "format", "missing_base_model", ...}`` (creates nothing)."""
        return self._json("POST", "/configs/from-yaml", json={"yaml": text})

    # -- datasets -------------------------------------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        return self._list("/datasets")

    def get_dataset(self, dataset_id: str) -> DatasetDetail:
        return self._json("GET", f"/datasets/{dataset_id}")

    def upload_dataset(self, path: str | Path, name: str | None = None, *, dedup: bool = False,
                       format: str | None = None, columns: dict[str, Any] | None = None,
                       tags: dict[str, Any] | None = None, on_progress: ProgressFn | None = None,
                       skip_invalid: bool = False) -> UploadedDataset:
        """Upload a data file, or a zip of them (one dataset per data file, all or none: ``datasets`` lists
        them). ``dedup`` drops exact duplicate rows (``duplicates_dropped``); ``format`` forces a format
        ("auto"/None detects it); ``columns`` and ``tags`` map fields and role tags (LLaMA-Factory keys). The
        file is streamed, and ``on_progress(sent, total)`` follows it; once sent == total the server validates."""
        path = Path(path)
        data: dict[str, str] = {"name": name} if name else {}
        if format and format != "auto":
            data["format"] = format
        if columns:
            data["columns"] = json.dumps(columns)
        if tags:
            data["tags"] = json.dumps(tags)
        params = {key: "true" for key, on in (("dedup", dedup), ("skip_invalid", skip_invalid)) if on} or None
        with path.open("rb") as fh:
            body = ProgressFile(fh, on_progress) if on_progress else fh
            return self._json("POST", "/datasets", files={"file": (path.name, body)}, data=data or None,
                              params=params, timeout=httpx.Timeout(60.0, read=1800.0))

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{dataset_id}")

    def rename_dataset(self, dataset_id: str, name: str) -> Dataset:
        return self._json("PATCH", f"/datasets/{dataset_id}", json={"name": name})

    def create_identity_dataset(self, name: str, author: str, dataset_name: str | None = None) -> Dataset:
        """A copy of the built-in identity demo with {{name}}/{{author}} filled in (default name identity-<name>)."""
        body: dict[str, Any] = {"name": name, "author": author}
        if dataset_name:
            body["dataset_name"] = dataset_name
        return self._json("POST", "/datasets/identity", json=body, timeout=60.0)

    def import_llamafactory_zip(self, path: str | Path, *, on_progress: ProgressFn | None = None,
                                skip_invalid: bool = False) -> ImportResult:
        """Import a zip of a LLaMA-Factory data folder: ``{"imported": [...], "skipped": [{name, reason}],
        "reused": [{name, dataset}]}``; ``skip_invalid`` leaves invalid records out instead of skipping the entry.
        ``on_progress(sent, total)`` follows the upload as in ``upload_dataset``."""
        path = Path(path)
        params = {"skip_invalid": "true"} if skip_invalid else None
        with path.open("rb") as fh:
            body = ProgressFile(fh, on_progress) if on_progress else fh
            return self._json("POST", "/datasets/import", files={"file": (path.name, body, "application/zip")},
                              params=params, timeout=httpx.Timeout(60.0, read=1800.0))

    def download_dataset(self, dataset_id: str, dest: Path) -> Path:
        """The normalized data.jsonl of one dataset, streamed into ``dest``."""
        return self._download(f"/datasets/{dataset_id}/download", dest, timeout=600.0)

    def export_llamafactory(self, dest: Path) -> Path:
        """Every registered dataset as a LLaMA-Factory data folder (zip), streamed into ``dest``."""
        return self._download("/datasets/export/llamafactory", dest, timeout=600.0)

    def preview_dataset(self, dataset_id: str, model: str, *, cutoff_len: int = 1024, samples: int = 3,
                        train_on_prompt: bool = False, chat_template: str = "auto") -> dict[str, Any]:
        """The dataset as ``model`` sees it: ``samples`` (``segments`` of ``{text, trained[, cut]}``), ``lengths``
        (stats, ``histogram``, ``truncated``, ``truncated_share``), ``rows``, ``tokenizer``. Tokenizing runs in
        an engine subprocess on the server: give it time."""
        params = {"model": model, "cutoff_len": cutoff_len, "samples": samples,
                  "train_on_prompt": "true" if train_on_prompt else "false"}
        if chat_template != "auto":
            params["chat_template"] = chat_template
        return self._json("GET", f"/datasets/{dataset_id}/preview", params=params, timeout=330.0)

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(self, config: dict[str, Any], name: str | None = None) -> Job:
        body = dict(config)
        if name:
            body["name"] = name
        return self._json("POST", "/jobs", json=body)

    def preview_job(self, config: dict[str, Any]) -> dict[str, Any]:
        """What submitting ``config`` would launch, creating nothing: ``{"argv": [...], "files": {name: text}}``
        (``accelerate.yaml`` / ``deepspeed.json`` for DeepSpeed and FSDP runs)."""
        return self._json("POST", "/jobs/preview", json=dict(config))

    def list_jobs(self, *, tag: str | None = None, query: str | None = None) -> list[Job]:
        """Every run, newest first; ``tag`` / ``query`` keep those carrying the tag / containing the text."""
        params = {key: value for key, value in (("tag", tag), ("q", query)) if value}
        return self._list("/jobs", params=params or None)

    def update_job(self, job_id: str, *, name: str | None = None, tags: list[str] | None = None,
                   notes: str | None = None) -> Job:
        """Rename a run, replace its tags, edit its notes (what is None stays as it is)."""
        body = {key: value for key, value in (("name", name), ("tags", tags), ("notes", notes)) if value is not None}
        return self._json("PATCH", f"/jobs/{job_id}", json=body)

    def delete_job(self, job_id: str) -> None:
        """Delete a finished run with its run directory (409 while it is queued or running)."""
        self._request("DELETE", f"/jobs/{job_id}")

    def get_job(self, job_id: str) -> Job:
        return self._json("GET", f"/jobs/{job_id}")

    def job_metrics(self, job_id: str, after: int | None = None) -> list[MetricRow]:
        params = {"after": after} if after is not None else None
        return self._list(f"/jobs/{job_id}/metrics", params=params)

    def job_logs(self, job_id: str, tail: int = 200) -> str:
        body = self._json("GET", f"/jobs/{job_id}/logs", params={"tail": tail})
        return str(body.get("text", "")) if isinstance(body, dict) else str(body)

    def cancel_job(self, job_id: str) -> Job:
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def stop_job(self, job_id: str) -> Job:
        return self._json("POST", f"/jobs/{job_id}/stop")

    def resume_job(self, job_id: str) -> Job:
        return self._json("POST", f"/jobs/{job_id}/resume")

    def list_presets(self) -> list[dict[str, Any]]:
        """The built-in run-config presets: ``{"name", "description", "command", "config"}`` each."""
        return self._list("/presets")

    # Train form: GET /capabilities (stage_kinds, refused), GET /rewards (folder, data: the Python rewards)
    def capabilities(self) -> dict[str, Any]:
        return self._json("GET", "/capabilities")

    def list_rewards(self) -> dict[str, Any]:
        return self._json("GET", "/rewards")

    # -- exports --------------------------------------------------------------------------------

    def download_adapter(self, job_id: str, dest: Path) -> Path:
        return self._download(f"/jobs/{job_id}/adapter", dest, timeout=600.0)

    def merge(self, job_id: str) -> MergeResult:
        # Merging loads the base model in a subprocess; give it time.
        return self._json("POST", f"/jobs/{job_id}/merge", timeout=3600.0)

    def download_merged(self, job_id: str, dest: Path) -> Path:
        return self._download(f"/jobs/{job_id}/merged", dest, timeout=3600.0)

    def start_export(self, job_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """``{"format": "gguf", "quantization": ...}`` or ``{"format": "safetensors", ...}``: the export's state
        (``running`` with ``progress``; ``succeeded`` with ``files``/``download`` when it existed already)."""
        return self._json("POST", f"/jobs/{job_id}/export", json=options, timeout=60.0)

    def get_export(self, job_id: str, key: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{job_id}/exports/{key}")

    def list_exports(self, job_id: str) -> list[dict[str, Any]]:
        return self._list(f"/jobs/{job_id}/exports")

    def job_lineage(self, job_id: str) -> dict[str, Any]:
        """dataset -> run -> export: ``{"datasets", "parent", "children", "exports", "base_model"}``."""
        return self._json("GET", f"/jobs/{job_id}/lineage")

    def download_export(self, job_id: str, key: str, dest: Path) -> Path:
        return self._download(f"/jobs/{job_id}/exports/{key}/download", dest, timeout=3600.0)

    # -- evaluations ----------------------------------------------------------------------------

    def evaluate(self, dataset: str | None, *, job_id: str | None = None, model: str | None = None,
                 max_samples: int = 50, max_new_tokens: int = 128, cutoff_len: int | None = None,
                 with_base: bool = False) -> dict[str, Any]:
        """Evaluate a succeeded job (``job_id``) or a base model (``model``) on a dataset: its metrics.json
        (``loss``, ``perplexity``, ``exact_match``, ``rouge_l``, ``bleu``, ``samples``, ``predictions``, ``id``...).
        A job: ``dataset`` None scores its held-out split; ``with_base`` its base model too (``base``, ``delta``).
        The server waits for the engine subprocess: give it time."""
        body: dict[str, Any] = {"dataset": dataset, "max_samples": max_samples, "max_new_tokens": max_new_tokens}
        if cutoff_len:
            body["cutoff_len"] = cutoff_len
        if job_id is not None:
            body = {key: value for key, value in body.items() if value is not None}
            return self._json("POST", f"/jobs/{job_id}/evaluate", json={**body, "with_base": with_base},
                              timeout=3700.0)
        return self._json("POST", "/evaluate", json={**body, "model": model}, timeout=3700.0)

    def evaluation_progress(self, *, job_id: str | None = None, model: str | None = None) -> dict[str, Any]:
        """How far the running evaluation of a job or base model is: ``running``, ``phase``, ``done``/``total``
        rows, ``fraction`` of the whole."""
        if job_id is not None:
            return self._json("GET", f"/jobs/{job_id}/evaluations/progress")
        return self._json("GET", "/evaluations/progress", params={"model": model})

    def list_evaluations(self, *, job_id: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        """A job's evaluations, or a base model's (every base model's when ``model`` is None), newest first."""
        if job_id is not None:
            return self._list(f"/jobs/{job_id}/evaluations")
        return self._list("/evaluations", params={"model": model} if model is not None else None)

    def download_predictions(self, eval_id: str, dest: Path, *, job_id: str | None = None) -> Path:
        """predictions.jsonl of an evaluation (of ``job_id``, or of a base model), streamed into ``dest``."""
        path = (f"/jobs/{job_id}/evaluations/{eval_id}/predictions" if job_id is not None
                else f"/evaluations/{eval_id}/predictions")
        return self._download(path, dest, timeout=600.0)

    # -- chat -----------------------------------------------------------------------------------

    def chat(self, messages: list[Message], *, model: str | None = None, job_id: str | None = None,
             max_new_tokens: int = 128, temperature: float = 0.7, top_p: float = 0.9) -> ChatReply:
        """One assistant reply from a base model (``model``) or a succeeded job (``job_id``)."""
        body: dict[str, Any] = {"messages": messages, "max_new_tokens": max_new_tokens,
                                "temperature": temperature, "top_p": top_p}
        body.update({"model": model} if model is not None else {"job_id": job_id})
        # The first reply for a target loads the model in a worker process: give it time.
        return self._json("POST", "/chat", json=body, timeout=900.0)

    def chat_stream(self, messages: list[Message], *, model: str | None = None, job_id: str | None = None,
                    max_new_tokens: int = 128, temperature: float = 0.7,
                    top_p: float = 0.9) -> Iterator[dict[str, Any]]:
        """The reply as it is generated: ``{"delta": text}`` events, then the ChatReply fields with ``done``.

        Errors before the first line (unknown target, load failure) and an ``{"error"}`` line midway are
        raised as ApiError.
        """
        body: dict[str, Any] = {"messages": messages, "max_new_tokens": max_new_tokens,
                                "temperature": temperature, "top_p": top_p}
        body.update({"model": model} if model is not None else {"job_id": job_id})
        path = "/chat/stream"
        try:
            with self._http.stream("POST", path, json=body, timeout=httpx.Timeout(900.0)) as response:
                if response.is_error:
                    response.read()
                    raise parse_error(response)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError as exc:
                        raise ApiError(f"The API sent a line that is not JSON (POST {path}): {line[:200]!r}") from exc
                    if "error" in event:
                        raise ApiError(str(event["error"]))
                    yield event
        except httpx.TimeoutException as exc:
            raise ApiError(f"The API did not answer in time (POST {path}): {exc}") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"Cannot reach the Tunesmith API at {self.api_url}: {exc}") from exc
