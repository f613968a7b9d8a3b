"""The column-mapping form of the Datasets tab's upload: the chosen file's columns, one picker per field the
studio reads (LLaMA-Factory's ``columns`` keys), and the mapping they make with the JSON box (kept for role
tags and power users).

Only the first records are read here (the UI never reads a whole file: the API validates it), and only to
offer the file's column names; a file these cannot read offers none, and the pickers still take typed names.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from backend.config.dataset_mapping import COLUMN_KEYS

FORM_KEYS = COLUMN_KEYS  # prompt, query, response, history, system, messages, chosen, rejected, kto_tag, tools, text
SAMPLE_RECORDS = 50
SAMPLE_BYTES = 1 << 20
MAX_ZIPPED_PARQUET = 64 << 20  # a parquet file inside a zip is read into memory for its schema only up to this
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")


def _keys(records: list[Any]) -> list[str]:
    """The keys of the object records, in order of first appearance."""
    seen: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            seen.update(dict.fromkeys(str(key) for key in record))
    return list(seen)


def _json_records(text: str) -> list[Any]:
    """The first records of a JSON array (possibly cut off at SAMPLE_BYTES) or of JSON lines."""
    decoder, records = json.JSONDecoder(), []
    body = text.lstrip("\ufeff \t\r\n")
    at = 1 if body.startswith("[") else 0
    while len(records) < SAMPLE_RECORDS:
        while at < len(body) and body[at] in " \t\r\n,":
            at += 1
        if at >= len(body) or body[at] == "]":
            break
        try:
            value, at = decoder.raw_decode(body, at)
        except json.JSONDecodeError:
            break  # cut off, or not JSON: the records read so far
        records.append(value)
    return records


def _columns_of_bytes(name: str, head: bytes) -> list[str]:
    suffix = Path(name).suffix.lower()
    text = head.decode("utf-8", errors="ignore")
    if suffix in (".json", ".jsonl"):
        return _keys(_json_records(text))
    if suffix == ".csv":
        return next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    return []


def _parquet_columns(source: Any) -> list[str]:
    import pyarrow.parquet as pq

    return [str(name) for name in pq.read_schema(source).names]


def file_columns(path: str | Path | None) -> list[str]:
    """The column names of the first records of a .json/.jsonl/.csv/.parquet file, or of the first data file
    of a .zip (its mapping applies to every file); [] for anything else or what cannot be read."""
    if not path:
        return []
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _parquet_columns(path)
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                inner = next((n for n in archive.namelist() if n.lower().endswith(DATA_SUFFIXES)
                              and not n.endswith("/") and Path(n).name != "dataset_info.json"), None)
                if inner is None:
                    return []
                with archive.open(inner) as fh:
                    if inner.lower().endswith(".parquet"):  # its schema is at its end: read whole, if small
                        small = archive.getinfo(inner).file_size <= MAX_ZIPPED_PARQUET
                        return _parquet_columns(io.BytesIO(fh.read())) if small else []
                    return _columns_of_bytes(inner, fh.read(SAMPLE_BYTES))
        with open(path, "rb") as fh:
            return _columns_of_bytes(path.name, fh.read(SAMPLE_BYTES))
    except (OSError, ValueError, zipfile.BadZipFile, ImportError):
        return []


def form_mapping(*picked: str | None) -> dict[str, str]:
    """The pickers' values (in FORM_KEYS order) as a mapping; blank pickers are left out (detected)."""
    return {key: value.strip() for key, value in zip(FORM_KEYS, picked, strict=False)
            if isinstance(value, str) and value.strip()}


def merge_mapping(form: dict[str, str] | None, typed: dict[str, Any] | None) -> dict[str, Any] | None:
    """The form's picks plus the JSON box's keys; ValueError naming a key both give differently."""
    typed = dict(typed or {})
    if set(typed) <= {"columns", "tags"} and typed and all(isinstance(v, dict) for v in typed.values()):
        typed = {**typed.get("columns", {}), **typed.get("tags", {})}  # a LLaMA-Factory entry's shape
    for key, value in (form or {}).items():
        if key in typed and typed[key] != value:
            raise ValueError(key)
        typed[key] = value
    return typed or None


# -- the form ------------------------------------------------------------------------------------------------
def build_form() -> dict[str, Any]:
    """Inside the Advanced accordion: what the file's columns are, one picker per field (choices filled when a
    file is chosen; any name can be typed), and a State holding the mapping they make."""
    import gradio as gr

    from app.i18n import t

    c: dict[str, Any] = {"found": gr.Markdown(t("datasets.columns_none"), elem_id="ds-columns-found")}
    pickers = []
    for start in range(0, len(FORM_KEYS), 3):
        with gr.Row():
            for key in FORM_KEYS[start:start + 3]:
                pickers.append(gr.Dropdown(label=t(f"datasets.colname.{key}"), info=t(f"datasets.colkey.{key}"), choices=[], value=None,
                                           allow_custom_value=True, min_width=140, elem_id=f"ds-col-{key}"))
    c["pickers"] = pickers
    c["picked"] = gr.State({})
    for picker in pickers:  # a person's pick (not a new file's reset, which clears the State itself)
        picker.input(form_mapping, inputs=pickers, outputs=c["picked"], show_progress="hidden")
    return c


def columns_found(lang: str, path: str | None):
    """On a new file: the found columns in words, each picker's choices and the mapping State (picks cleared)."""
    import gradio as gr

    from app.i18n import t

    names = file_columns(path)
    text = (t("datasets.columns_found", lang, columns=", ".join(f"`{n}`" for n in names)) if names
            else t("datasets.columns_none", lang))
    return (text, *(gr.Dropdown(choices=names, value=None) for _ in FORM_KEYS), {})

