"""What a LLaMA-Factory import did, as Markdown: the datasets created (with their warnings: skipped records,
``{{placeholders}}``), the entries whose rows were registered already (reused, not copied as ``name-2``), and
the entries skipped with the reason; an entry refused for invalid records lists every problem the API sent."""

from __future__ import annotations

from typing import Any

from app.client import Dataset, ImportResult
from app.i18n import DEFAULT, t
from app.pages.dataset_errors import message_without_problems


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def code(text: object) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def problem_lines(problems: list[dict[str, Any]], count: int, lang: str) -> list[str]:
    """One bullet per problem (``location field: message``), then how many the API did not list."""
    lines = [f"- {p.get('location', '')}{' ' + p['field'] if p.get('field') else ''}: {p.get('message', '')}"
             for p in problems if isinstance(p, dict)]
    if count > len(lines):
        lines.append("- " + t("upload.more_problems", lang, count=count - len(lines)))
    return lines


def warning_lines(ds: Dataset, lang: str) -> str:
    """A dataset's warnings (the API keeps the first 20) under their count; "" when it has none."""
    warnings = ds.get("warnings") or []
    if not warnings:
        return ""
    count = ds.get("warning_count") or len(warnings)
    return "\n\n" + t("upload.warnings", lang, count=count) + "\n" + "\n".join(problem_lines(warnings, count, lang))


def _skipped_lines(skipped: list[dict[str, Any]], max_names: int, lang: str) -> list[str]:
    """Entries refused for invalid records one by one with their problems; the others grouped by reason,
    rarest first (LLaMA-Factory's own dataset_info.json lists dozens of hub datasets)."""
    lines: list[str] = []
    by_reason: dict[str, list[str]] = {}
    for entry in skipped:
        problems = [p for p in entry.get("errors") or [] if isinstance(p, dict)]
        if not problems:
            by_reason.setdefault(" ".join(str(entry.get("reason", "")).split()), []).append(str(entry.get("name")))
            continue
        head = message_without_problems(str(entry.get("reason", "")), [{"msg": p.get("message")} for p in problems])
        lines.append(f"- {code(entry.get('name'))}: {head}\n"
                     + "\n".join("  " + line for line in problem_lines(problems, entry.get("error_count") or 0, lang))
                     + "\n\n  " + t("import.skip_invalid_hint", lang))
    for reason, names in sorted(by_reason.items(), key=lambda item: len(item[1])):
        shown = ", ".join(code(n) for n in names[:max_names])
        more = t("import.more", lang, count=len(names) - max_names) if len(names) > max_names else ""
        lines.append(f"- {shown}{more}: {reason}")
    return lines


def import_markdown(result: ImportResult, max_names: int = 8, lang: str = DEFAULT) -> str:
    """What an import did: a table of imported datasets (name, format, rows) and their warnings, the entries
    reused, and the entries skipped."""
    imported, skipped, reused = result.get("imported") or [], result.get("skipped") or [], result.get("reused") or []
    parts = [t("import.imported", lang, count=len(imported))
             + (t("import.skipped", lang, count=len(skipped)) if skipped else ".")]
    if imported:
        parts.append(t("import.table_head", lang) + "\n|---|---|---:|\n" + "\n".join(
            f"| {cell(code(ds.get('name')))} | {cell(ds.get('format', ''))} | {ds.get('num_rows', '')} |"
            for ds in imported))
        parts.extend(f"**{code(ds.get('name'))}**{warning_lines(ds, lang)}" for ds in imported if ds.get("warnings"))
    if reused:
        parts.append(t("import.reused_head", lang, count=len(reused)) + "\n\n" + "\n".join(
            "- " + t("import.reused_line", lang, entry=code(r.get("name")), name=code(r.get("dataset", {}).get("name")),
                     count=r.get("dataset", {}).get("num_rows"))
            for r in reused))
    if skipped:
        parts.append(t("import.skipped_head", lang) + "\n\n" + "\n".join(_skipped_lines(skipped, max_names, lang)))
    return "\n\n".join(parts)
