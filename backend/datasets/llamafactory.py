"""LLaMA-Factory data folders: import one (dataset_info.json + data files) and export the registry as one.

An entry of dataset_info.json names a local ``file_name`` (or a hub/script/cloud source, which we skip), a
``formatting`` (alpaca | sharegpt), ``columns`` and ``tags`` that rename fields and roles, ``ranking`` for
preference pairs and a ``kto_tag`` column for KTO labels. Each usable entry is read through the normal
converters (a formats.Columns carries the renaming) and registered on its own, atomically, under the entry's
name (``name-2`` on a clash): ranking entries as preference, kto_tag entries as kto, ``.txt`` files and
prompt-only entries (LLaMA-Factory's pre-training layout) as text. An entry whose normalized rows are exactly
those of a dataset already registered is not copied again: it is reported in ``reused`` with that dataset.
Entries we cannot use are reported in ``skipped`` with the reason, never silently dropped; with
``skip_invalid`` an entry's invalid records are left out (listed in its warnings) instead of skipping it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from backend.datasets.archives import extract, open_zip, safe_members
from backend.datasets.columns import MEDIA_KEYS, columns_from_mapping
from backend.datasets.errors import (
    DatasetArchiveError,
    DatasetError,
    DatasetNameTaken,
    DatasetValidationError,
    ImportPathForbidden,
    ImportSourceNotFound,
)
from backend.datasets.formats import Columns, dataset_kind
from backend.datasets.readers import FILE_TYPES, TEXT_FILE_TYPES, file_type
from backend.datasets.registry import DatasetRecord, DatasetRegistry
from backend.datasets.validate import NormalizeOptions
from backend.local_paths import check_client_path
from backend.settings import Settings
from backend.zipstream import ChunkSink

INFO_FILE = "dataset_info.json"
REMOTE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
REMOTE_REASON = "remote datasets are not fetched; download the file into the folder"
# Our normalized form, described in LLaMA-Factory's terms (used by the export).
EXPORT_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "system_tag": "system"}
EXPORT_TOOL_TAGS = {"function_tag": "function_call", "observation_tag": "observation"}
EXPORT_ENTRY = {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": EXPORT_TAGS}


@dataclass
class ImportReport:
    imported: list[DatasetRecord] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"name", "reason"[, "errors", "error_count"]}
    reused: list[tuple[str, DatasetRecord]] = field(default_factory=list)  # (entry name, dataset with its rows)

    def skip(self, name: str, reason: str, problems: DatasetValidationError | None = None) -> None:
        """An entry not imported; for invalid records, each problem too (the first 20, and how many)."""
        entry: dict[str, Any] = {"name": name, "reason": reason}
        if problems is not None and problems.errors:
            entry.update(errors=problems.errors, error_count=problems.error_count)
        self.skipped.append(entry)


# ---- where an import may come from --------------------------------------------------------------------
def import_root(settings: Settings) -> Path:
    """Server-side folders may only be imported from under this root ($TUNESMITH_IMPORT_ROOT, default home/import)."""
    return Path(os.environ.get("TUNESMITH_IMPORT_ROOT") or settings.home / "import").resolve()


def resolve_import_folder(settings: Settings, path: str) -> Path:
    """The folder ``path`` (absolute, or relative to the import root), which must resolve inside the root."""
    root = import_root(settings)
    folder = (root / check_client_path(path, ("body", "path"))).resolve()
    if not folder.is_relative_to(root):
        raise ImportPathForbidden(f"'{path}' is outside the import root {root}. Copy or link the folder under "
                                  "that root (set TUNESMITH_IMPORT_ROOT to allow another one) and import it from there.")
    if not folder.is_dir():
        raise ImportSourceNotFound(f"no folder '{path}' under the import root {root}.")
    if not (folder / INFO_FILE).is_file():
        raise ImportSourceNotFound(f"{folder} has no {INFO_FILE}; point 'path' at a LLaMA-Factory data folder.")
    return folder


# ---- import -----------------------------------------------------------------------------------------------
def import_folder(registry: DatasetRegistry, folder: Path, skip_invalid: bool = False) -> ImportReport:
    """Register every usable entry of ``folder``/dataset_info.json; see the module docstring."""
    info = read_dataset_info(folder / INFO_FILE)
    report = ImportReport()
    for name, spec in info.items():
        plan = plan_entry(spec, folder)
        if isinstance(plan, str):
            report.skip(name, plan)
            continue
        path, options = plan
        try:
            record, new = _register(registry, name, path, replace(options, skip_invalid=skip_invalid))
            if new:
                report.imported.append(record)
            else:
                report.reused.append((name, record))
        except DatasetValidationError as err:
            report.skip(name, err.message, err)
        except DatasetError as err:
            report.skip(name, str(err))
    return report


def import_zip(registry: DatasetRegistry, filename: str, fileobj: BinaryIO, skip_invalid: bool = False) -> ImportReport:
    """A zip of a data folder: dataset_info.json at the top or inside its one top-level folder."""
    limit = registry.settings.max_upload_bytes
    with registry.work_dir(".import-") as work:
        upload = work / "upload.zip"
        registry.copy_limited(fileobj, upload)
        with open_zip(upload, filename) as archive:
            members = safe_members(archive, filename, limit)
            top = _info_folder(members, filename)
            extract(archive, members, work / "folder", filename, limit)
        return import_folder(registry, work / "folder" / top, skip_invalid)


def read_dataset_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetValidationError(f"{INFO_FILE} is not valid JSON: {err}. Fix it and import again.") from None
    if not isinstance(info, dict):
        raise DatasetValidationError(f"{INFO_FILE} must hold one JSON object mapping dataset names to entries.")
    return info


def plan_entry(spec: Any, folder: Path) -> tuple[Path, NormalizeOptions] | str:
    """(file, how to read it) for a usable entry, or the reason it is skipped."""
    if not isinstance(spec, Mapping):
        return f"the entry must be an object with 'file_name', got {type(spec).__name__}"
    if any(key in spec for key in REMOTE_KEYS):
        return REMOTE_REASON
    columns, tags = spec.get("columns") or {}, spec.get("tags") or {}
    if not isinstance(columns, Mapping) or not isinstance(tags, Mapping):
        return "'columns' and 'tags' must be objects"
    media = [c for c in MEDIA_KEYS if c in columns]
    if media:
        return f"multimodal data ({', '.join(media)}) is not supported yet; only text datasets can be imported"
    formatting = spec.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt"):
        return f"formatting '{formatting}' is not supported; use alpaca or sharegpt"
    file_name = spec.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        return "the entry has no 'file_name' (and no hub URL)"
    path = (folder / file_name).resolve()
    if not path.is_relative_to(folder.resolve()):
        return f"file_name '{file_name}' points outside the data folder"
    if path.is_dir():
        return f"file_name '{file_name}' is a folder; folders of data files are not supported yet, name one file"
    if not path.is_file():
        return f"file '{file_name}' is not in the folder"
    suffix = path.suffix.lower()
    if suffix not in FILE_TYPES and suffix not in TEXT_FILE_TYPES:
        return f"file '{file_name}' is not {', '.join([*FILE_TYPES, *TEXT_FILE_TYPES])}"
    fmt = entry_format(spec, columns, formatting, suffix)
    try:
        mapped = columns_from_mapping(columns, tags, formatting="text" if fmt in (None, "text") else formatting,
                                      llamafactory=True, where=f"{INFO_FILE} columns")
    except DatasetValidationError as err:
        return err.message
    entry = {key: spec[key] for key in ("formatting", "ranking", "columns", "tags") if spec.get(key)}
    return path, NormalizeOptions(format=fmt, columns=mapped, text_split="lines",
                                  mapping={"llamafactory": entry} if entry else {})


def entry_format(spec: Mapping, columns: Mapping, formatting: str, suffix: str) -> str | None:
    """The format an entry is read as; None = text or alpaca by the file's keys (a prompt-only alpaca entry
    is LLaMA-Factory's pre-training layout, e.g. ``columns: {prompt: text}``)."""
    if spec.get("ranking") or "chosen" in columns or "rejected" in columns:
        return "preference"
    if "kto_tag" in columns:
        return "kto"
    if suffix in TEXT_FILE_TYPES:
        return "text"
    if formatting == "alpaca" and "prompt" in columns and "response" not in columns:
        return None
    return formatting


def columns_of(formatting: str, columns: Mapping[str, str], tags: Mapping[str, str]) -> Columns:
    """LLaMA-Factory's columns/tags (with its defaults) as a formats.Columns."""
    return columns_from_mapping(columns, tags, formatting=formatting, llamafactory=True)


def _register(registry: DatasetRegistry, name: str, path: Path,
              options: NormalizeOptions) -> tuple[DatasetRecord, bool]:
    """(the new dataset, True), or (the registered dataset with the same normalized rows, False): an identical
    file imported again is not copied as ``name-2``."""
    with registry.work_dir(".import-entry-") as work:
        for attempt in range(3):  # another upload may take the free name between the check and the insert
            staging, record = registry.stage(work / f"dataset-{attempt}", path, file_type(path.name), path.name,
                                             registry.free_name(name), options=options)
            same = same_content(registry, record.sha256)
            if same is not None:
                return same, False
            try:
                return registry.publish([(staging, record)])[0], True
            except DatasetNameTaken:
                continue
    raise DatasetNameTaken(f"could not find a free name for '{name}'; rename the entry and import again")


def same_content(registry: DatasetRegistry, sha256: str) -> DatasetRecord | None:
    """A user dataset whose normalized data.jsonl has this sha256 (built-ins are re-registered at each start,
    so they are not reused)."""
    return next((r for r in registry.list() if r.sha256 == sha256 and not r.builtin), None)


def _info_folder(members: list, filename: str) -> PurePosixPath:
    """'' or the one top-level folder that holds dataset_info.json."""
    paths = [PurePosixPath(m.filename.replace("\\", "/")) for m in members]
    if PurePosixPath(INFO_FILE) in paths:
        return PurePosixPath()
    nested = [p for p in paths if len(p.parts) == 2 and p.name == INFO_FILE]
    if len(nested) == 1:
        return nested[0].parent
    raise DatasetArchiveError(f"{filename} has no {INFO_FILE} at its top or inside one top-level folder "
                              f"(found {len(nested)} candidates). Zip the LLaMA-Factory data folder itself.")


# ---- export -----------------------------------------------------------------------------------------------
def iter_export_zip(records: list[DatasetRecord], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """A zip of ``records`` in LLaMA-Factory's layout, produced piece by piece (nothing held whole in memory).

    One ``<name>.json`` (a JSON array of rows in LLaMA-Factory's form, see ``export_row``) per dataset, and a
    dataset_info.json (written last, listing only the datasets whose files could be read) describing each:
    sharegpt with role/content tags (plus ``ranking`` for preference, ``kto_tag`` for KTO, function/observation
    tags and a ``tools`` column when used), or ``columns: {prompt: text}`` for raw text.
    """
    import zipfile

    sink = ChunkSink()
    info: dict[str, dict] = {}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            file_name = f"{record.name}.json"
            kind = dataset_kind(record.format)
            try:
                uses = _tool_use(record.path)
                source = open(record.path, "rb")
            except FileNotFoundError:
                continue  # deleted while exporting
            with source, archive.open(file_name, "w", force_zip64=True) as dest:
                dest.write(b"[\n")
                for number, line in enumerate(source):
                    row = export_row(json.loads(line), kind)
                    dest.write((b",\n" if number else b"") + json.dumps(row, ensure_ascii=False).encode())
                    if sink.pending >= chunk_size:
                        yield sink.drain()
                dest.write(b"\n]\n")
            info[record.name] = {"file_name": file_name, **export_entry(kind, *uses)}
            yield sink.drain()
        archive.writestr(INFO_FILE, json.dumps(info, ensure_ascii=False, indent=2) + "\n")
    yield sink.drain()


def export_entry(kind: str, tools_column: bool = False, tool_turns: bool = False) -> dict:
    """The dataset_info.json entry (without file_name) that reads ``export_row``'s rows back."""
    if kind == "text":
        return {"columns": {"prompt": "text"}}
    columns = {"messages": "messages"}
    if kind == "preference":
        columns.update(chosen="chosen", rejected="rejected")
    if kind == "kto":
        columns["kto_tag"] = "label"
    if tools_column:
        columns["tools"] = "tools"
    tags = {**EXPORT_TAGS, **(EXPORT_TOOL_TAGS if tool_turns else {})}
    return {**({"ranking": True} if kind == "preference" else {}), "formatting": "sharegpt", "columns": columns,
            "tags": tags}


def export_row(row: dict, kind: str) -> dict:
    """A normalized row in LLaMA-Factory's sharegpt form: tool calls as function_call turns (JSON text), tool
    results as observation turns, tools as a JSON string, the chosen reply split off the conversation."""
    if kind == "text":
        return {"text": row["text"]}
    messages = [_export_turn(m) for m in row["messages"]]
    out: dict[str, Any] = {"messages": messages}
    if kind == "preference":
        out = {"messages": messages[:-1], "chosen": messages[-1], "rejected": row["rejected"]}
    if kind == "kto":
        out["label"] = row["label"]
    if row.get("tools"):
        out["tools"] = json.dumps(row["tools"], ensure_ascii=False)
    return out


def _export_turn(message: dict) -> dict:
    if message.get("tool_calls"):
        calls = message["tool_calls"]
        return {"role": "function_call", "content": json.dumps(calls[0] if len(calls) == 1 else calls,
                                                               ensure_ascii=False)}
    if message["role"] == "tool":
        return {"role": "observation", "content": message["content"]}
    return {"role": message["role"], "content": message["content"]}


def _tool_use(path: Path) -> tuple[bool, bool]:
    """(any row has tools, any row has tool-call or tool turns): a first pass over the normalized file."""
    tools_column = tool_turns = False
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if '"tool' not in line:
                continue
            row = json.loads(line)
            tools_column = tools_column or bool(row.get("tools"))
            tool_turns = tool_turns or any("tool_calls" in m or m["role"] == "tool" for m in row.get("messages", []))
            if tools_column and tool_turns:
                break
    return tools_column, tool_turns
