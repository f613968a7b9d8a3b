"""The Datasets tab's upload: advanced format/column options, the progress of forwarding the file to the API,
and what an upload or a LLaMA-Factory import did, as Markdown.

Gradio's gr.File shows the browser -> studio transfer itself; ``UploadProgress`` covers the next leg (the
studio streaming the file to the API, then the API validating it), which for a big file is the long one.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.client import ApiError, TunesmithClient, UploadedDataset
from app.format import fmt_bytes
from app.i18n import DEFAULT, t
from app.pages.dataset_columns import merge_mapping
from app.pages.dataset_errors import about_columns, refusal_markdown
from app.pages.dataset_import import cell, import_markdown, warning_lines
from backend.config.dataset_mapping import TAG_KEYS

FORMATS = ["auto", "alpaca", "messages", "sharegpt", "preference", "kto", "text"]

COLUMNS_PLACEHOLDER = '{"prompt": "question", "response": "answer"}'


def parse_columns(text: str | None, lang: str = DEFAULT) -> dict[str, Any] | None:
    """The column mapping typed in the UI (None when blank); ValueError saying what is wrong otherwise."""
    if not (text or "").strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(t("upload.columns_not_json", lang, msg=err.msg, line=err.lineno, column=err.colno,
                           example=COLUMNS_PLACEHOLDER)) from None
    if not isinstance(value, dict):
        raise ValueError(t("upload.columns_not_object", lang, example=COLUMNS_PLACEHOLDER,
                           kind=type(value).__name__))
    return value or None


def split_mapping(mapping: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(columns, tags) for the API: role-tag keys go to ``tags``, the rest to ``columns``; a LLaMA-Factory
    entry shape ``{"columns": {...}, "tags": {...}}`` is taken as it is."""
    if not mapping:
        return None, None
    if set(mapping) <= {"columns", "tags"} and all(isinstance(v, dict) for v in mapping.values()):
        return mapping.get("columns") or None, mapping.get("tags") or None
    tags = {k: v for k, v in mapping.items() if k in TAG_KEYS}
    columns = {k: v for k, v in mapping.items() if k not in TAG_KEYS}
    return columns or None, tags or None


def is_llamafactory_zip(path: str | Path) -> bool:
    """True for a zip holding a dataset_info.json (a LLaMA-Factory data folder: it goes to the import route)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(Path(name).name == "dataset_info.json" for name in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class UploadProgress:
    """``on_progress`` for the client: bytes sent as a fraction (at most every 1% or 0.25 s), then, once all
    are sent, "validating". ``report`` is a gr.Progress (called as report(fraction, desc=...))."""

    def __init__(self, report: Callable[..., Any], filename: str, clock: Callable[[], float] = time.monotonic,
                 lang: str = DEFAULT):
        self.report, self.filename, self.clock, self.lang = report, filename, clock, lang
        self.last_fraction, self.last_time, self.validating = -1.0, float("-inf"), False

    def start(self) -> None:
        self.report(0.0, desc=t("upload.sending", self.lang, file=self.filename))

    def __call__(self, sent: int, total: int) -> None:
        if sent >= total:
            if not self.validating:
                self.validating = True
                self.report(1.0, desc=t("upload.validating", self.lang, size=fmt_bytes(total), file=self.filename))
            return
        fraction, now = sent / total, self.clock()
        if fraction - self.last_fraction < 0.01 and now - self.last_time < 0.25:
            return
        self.last_fraction, self.last_time = fraction, now
        self.report(fraction, desc=t("upload.sending_bytes", self.lang, file=self.filename, sent=fmt_bytes(sent),
                                     total=fmt_bytes(total)))


def upload_markdown(ds: UploadedDataset, dedup: bool = False, lang: str = DEFAULT) -> str:
    """What an upload registered: one dataset in a sentence, several (a zip) as a table."""
    created = ds.get("datasets") or [ds]
    if len(created) > 1:
        header = t("upload.table_head", lang) + (t("upload.table_dups", lang) if dedup else "")
        rows = "\n".join(f"| `{cell(d.get('name'))}` | {cell(d.get('format', ''))} | {d.get('num_rows', '')} | "
                         f"{fmt_bytes(d.get('size_bytes'))} |" + (f" {d.get('duplicates_dropped', 0)} |" if dedup else "")
                         for d in created)
        warned = [f"**{d.get('name')}**{warning_lines(d, lang)}" for d in created if d.get("warnings")]
        return (t("upload.registered_many", lang, count=len(created)) + f"\n\n{header}\n"
                + "|---|---|---:|---:|" + ("---:|" if dedup else "") + "\n" + rows
                + ("\n\n" + "\n\n".join(warned) if warned else ""))
    message = t("upload.registered", lang, name=ds.get("name"), format=ds.get("format"), rows=ds.get("num_rows"),
                size=fmt_bytes(ds.get("size_bytes")), id=ds.get("id"))
    dropped = ds.get("duplicates_dropped", 0)
    if dedup:
        message += "  \n" + t("upload.dups_dropped", lang, count=dropped)
    return message + warning_lines(ds, lang)


def upload_file(client: TunesmithClient, path: str, name: str | None, dedup: bool, fmt: str | None,
                columns_text: str | None, report: Callable[..., Any], lang: str = DEFAULT,
                skip_invalid: bool = False, picked: dict[str, str] | None = None) -> tuple[str, str | None]:
    """Upload ``path`` (a LLaMA-Factory zip goes to the import route) with progress on ``report``:
    (Markdown of what happened, id of a dataset to select or None when nothing was registered).
    ``skip_invalid`` leaves invalid records out (named in the warnings) instead of refusing the file; ``picked``
    is the mapping form's choice of columns, merged with the JSON box ``columns_text``."""
    filename = Path(path).name
    try:
        typed = parse_columns(columns_text, lang)
    except ValueError as err:
        return t("upload.nothing_uploaded", lang, error=err), None
    try:
        columns, tags = split_mapping(merge_mapping(picked, typed))
    except ValueError as err:
        return t("upload.nothing_uploaded", lang, error=t("upload.mapping_conflict", lang, field=str(err))), None
    progress = UploadProgress(report, filename, lang=lang)
    progress.start()
    try:
        if filename.lower().endswith(".zip") and is_llamafactory_zip(path):
            result = client.import_llamafactory_zip(path, on_progress=progress, skip_invalid=skip_invalid)
            imported = result.get("imported") or []
            return (t("upload.lf_folder", lang) + "\n\n" + import_markdown(result, lang=lang)), (
                imported[0].get("id") if imported else None)
        ds = client.upload_dataset(path, name, dedup=dedup, format=fmt, columns=columns, tags=tags,
                                   on_progress=progress, skip_invalid=skip_invalid)
    except ApiError as exc:
        refused = exc.status_code is not None and 400 <= exc.status_code < 500
        key = "upload.failed_nothing_kept" if refused else "upload.failed"
        message = t(key, lang, file=filename) + "\n\n" + refusal_markdown(exc, lang)
        if about_columns(exc):
            message += "\n\n" + t("upload.mapping_hint", lang)  # other field names: the mapping is the way in
        return message, None
    return upload_markdown(ds, dedup, lang), ds.get("id")
