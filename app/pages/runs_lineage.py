"""The Runs page's **Lineage** section: dataset -> run -> export for the selected run (``GET /jobs/{id}/lineage``):
the datasets it trained on with their content hash, its base model, the run it continued from (a button selects
it), the runs continued from it, and its exports."""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import gradio as gr

from app.client import ApiError, TunesmithClient
from app.format import error_markdown, fmt_bytes, state_text
from app.i18n import DEFAULT, localized, t

LINEAGE_CSS = """
.ts-lineage { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; font-size: 13px; }
.ts-lineage dt { color: var(--body-text-color-subdued); }
.ts-lineage dd { margin: 0; }
.ts-lineage code { font-size: 12px; }
.ts-empty { color: var(--body-text-color-subdued); }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value if value is not None else ""))


def _run_line(run: dict[str, Any], lang: str) -> str:
    if not run.get("exists", True):
        return t("lineage.run_deleted", lang, id=_esc(run.get("id")))
    return f"<b>{_esc(run.get('name'))}</b> <code>{_esc(run.get('id'))}</code> · {_esc(state_text(run.get('state'), lang))}"


def _dataset_line(ds: dict[str, Any], lang: str) -> str:
    role = t("lineage.role_validation" if ds.get("role") == "validation" else "lineage.role_train", lang)
    parts = [f"<b>{_esc(ds.get('name'))}</b> <code>{_esc(ds.get('id'))}</code>", role,
             t("lineage.rows", lang, rows=ds.get("num_rows", "?"))]
    if ds.get("weight") is not None:
        parts.append(t("lineage.weight", lang, weight=ds["weight"]))
    sha = ds.get("sha256")
    parts.append(f'<span title="sha256 {_esc(sha)}">sha256 <code>{_esc(sha[:12])}…</code></span>' if sha
                 else t("lineage.dataset_deleted", lang))
    return " · ".join(parts)


def _export_line(export: dict[str, Any], lang: str) -> str:
    detail = export.get("quantization") or export.get("dtype") or ""
    parts = [f"<code>{_esc(export.get('id'))}</code>", _esc(export.get("format") or ""), _esc(detail),
             _esc(state_text(export.get("state"), lang)), _esc(fmt_bytes(export.get("bytes")))]
    return " · ".join(p for p in parts if p)


def lineage_html(report: dict[str, Any], lang: str = DEFAULT) -> str:
    """A definition list: datasets (each on a line), base model, parent, children, exports."""
    rows = [("lineage.datasets", "<br>".join(_dataset_line(d, lang) for d in report.get("datasets") or [])
             or _esc(t("lineage.none", lang))),
            ("lineage.base_model", f"<code>{_esc(report.get('base_model'))}</code>"),
            ("lineage.parent", _run_line(report["parent"], lang) if report.get("parent")
             else _esc(t("lineage.fresh", lang))),
            ("lineage.children", "<br>".join(_run_line(c, lang) for c in report.get("children") or [])
             or _esc(t("lineage.none", lang))),
            ("lineage.exports", "<br>".join(_export_line(e, lang) for e in report.get("exports") or [])
             or _esc(t("lineage.no_exports", lang)))]
    body = "".join(f"<dt>{_esc(t(key, lang))}</dt><dd>{value}</dd>" for key, value in rows)
    return f'<dl class="ts-lineage">{body}</dl>'


def load(client: TunesmithClient, lang: str, job_id: str | None) -> tuple[str, Any, str | None]:
    """The selected run's lineage, the "Select the parent run" button (shown when the parent still exists) and
    the parent's id."""
    if not job_id:
        return f'<div class="ts-empty">{_esc(t("runs.empty", lang))}</div>', gr.Button(visible=False), None
    try:
        report = client.job_lineage(job_id)
    except ApiError as exc:
        return _esc(error_markdown(exc, lang)), gr.Button(visible=False), None
    parent = report.get("parent") or {}
    parent_id = parent.get("id") if parent.get("exists") else None
    return lineage_html(report, lang), gr.Button(visible=bool(parent_id)), parent_id


def build(client: TunesmithClient, job: gr.Dropdown, open_parent: gr.Button) -> None:
    """An accordion under the run picker; re-read when another run is picked or when it is opened.
    ``open_parent`` (beside the run's shortcuts) is shown for a continued run and selects its parent."""
    with gr.Accordion(t("lineage.title"), open=False, elem_id="runs-lineage") as section:
        view = gr.HTML("", css_template=LINEAGE_CSS, elem_id="runs-lineage-view")
    parent = gr.State(None)
    loaded = localized(partial(load, client))
    for trigger in (job.change, section.expand):
        trigger(loaded, inputs=[job], outputs=[view, open_parent, parent], show_progress="hidden")
    open_parent.click(lambda parent_id: parent_id or gr.skip(), inputs=[parent], outputs=[job])
