"""What the Models tab shows, as pure functions of the API's replies: the model table, a download's plan, its
progress and outcome, the recent downloads, and a refusal explained in the page's language."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from app.client import ApiError
from app.format import error_markdown, fmt_bytes, fmt_duration, fmt_time
from app.i18n import DEFAULT, t

EXPLAINED = (403, 404, 409, 422, 503, 507)  # statuses with a models.why.<status> line


def model_kind(model: dict[str, Any], lang: str = DEFAULT) -> str:
    if model.get("bundled"):
        return t("models.kind_bundled", lang)
    if model.get("repo_id"):
        return t("models.kind_downloaded", lang, repo=model["repo_id"])
    return t("models.kind_local", lang)


def models_frame(models: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    rows = [[m.get("id", "?"), fmt_bytes(m.get("size_bytes")), model_kind(m, lang), m.get("path", "")]
            for m in models]
    columns = [t(f"models.col_{name}", lang) for name in ("name", "size", "kind", "where")]
    return pd.DataFrame(rows, columns=columns)


def plan_markdown(plan: dict[str, Any], lang: str = DEFAULT) -> str:
    """What a download would fetch, whether it resumes an earlier attempt, and whether it fits on the disk."""
    lines = [t("models.plan_summary", lang, repo=plan["repo_id"], revision=plan["revision"],
               commit=str(plan.get("commit", ""))[:10], model_id=plan["model_id"], files=len(plan.get("files") or []),
               total=fmt_bytes(plan["total_bytes"]))]
    if plan.get("installed"):
        return "\n\n".join([*lines, t("models.plan_installed", lang, model_id=plan["model_id"])])
    if plan.get("present_bytes"):
        lines.append(t("models.plan_resume", lang, present=fmt_bytes(plan["present_bytes"]),
                       needed=fmt_bytes(plan["needed_bytes"])))
    sizes = {"free": fmt_bytes(plan["free_bytes"]), "reserve": fmt_bytes(plan["reserve_bytes"])}
    if plan.get("fits"):
        lines.append(t("models.plan_fits", lang, **sizes))
    else:
        lines.append(t("models.plan_too_big", lang, needed=fmt_bytes(plan["needed_bytes"]), **sizes))
    return "\n\n".join(lines)


def refusal_markdown(exc: Exception, lang: str = DEFAULT) -> str:
    """An API refusal: what it means for a download, in ``lang`` (offline, gated, disk too small...), then the
    API's own words."""
    status = getattr(exc, "status_code", None)
    why = t(f"models.why.{status}", lang) + "\n\n" if isinstance(exc, ApiError) and status in EXPLAINED else ""
    return why + error_markdown(exc, lang)


def progress_html(download: dict[str, Any] | None, lang: str = DEFAULT) -> str:
    """A progress bar with bytes done / total, the file being fetched, speed and time left."""
    if not download:
        return ""
    done, total = int(download.get("bytes_done") or 0), int(download.get("bytes_total") or 0)
    fraction = float(download.get("progress") or (done / total if total else 0.0))
    label = t("models.progress", lang, percent=f"{fraction * 100:.0f}", done=fmt_bytes(done), total=fmt_bytes(total))
    parts = [label]
    if download.get("state") == "running" and download.get("current_file"):
        parts.append(t("models.progress_file", lang, file=download["current_file"]))
    if download.get("state") == "running" and download.get("bytes_per_s"):
        parts.append(t("models.progress_speed", lang, speed=fmt_bytes(download["bytes_per_s"]),
                       eta=fmt_duration(download.get("eta_s"), lang) or "?"))
    text = html.escape(" · ".join(parts))
    return (f'<div class="ts-download"><progress max="1" value="{fraction:.4f}" aria-label="{html.escape(label)}" '
            f'style="width:100%"></progress><div>{text}</div></div>')


def outcome_markdown(download: dict[str, Any], lang: str = DEFAULT) -> str:
    """The status line for a download in its current state."""
    state, repo = download.get("state"), download.get("repo_id", "?")
    if state == "running":
        return t("models.running", lang, repo=repo)
    if state == "succeeded":
        return t("models.succeeded", lang, repo=repo, model_id=download.get("model_id", "?"))
    if state in ("cancelled", "interrupted"):
        return t(f"models.{state}", lang, repo=repo)
    error = str(download.get("error") or "?") + (f" (hint: {download['hint']})" if download.get("hint") else "")
    return t("models.failed", lang, repo=repo, error=error)


def downloads_frame(downloads: list[dict[str, Any]], lang: str = DEFAULT) -> pd.DataFrame:
    states = ("running", "succeeded", "failed", "cancelled", "interrupted")
    rows = [[d.get("repo_id", "?"),
             t(f"models.state.{d['state']}", lang) if d.get("state") in states else str(d.get("state")),
             f"{float(d.get('progress') or 0) * 100:.0f}% · {fmt_bytes(d.get('bytes_total'))}",
             fmt_time(d.get("started_at"))] for d in downloads]
    columns = [t(f"models.col_{name}", lang) for name in ("repo", "state", "done", "started")]
    return pd.DataFrame(rows, columns=columns)


def usable_sources(sources: list[dict[str, Any]]) -> list[str]:
    """The hubs a download can start from now (Hugging Face alone when none is: its refusal then says why)."""
    return [str(s["name"]) for s in sources if s.get("available")] or ["huggingface"]


def sources_markdown(sources: list[dict[str, Any]], names: dict[str, str], lang: str = DEFAULT) -> str:
    """Where downloads come from (the hub or the mirror HF_ENDPOINT names), or why none can start."""
    usable = [s for s in sources if s.get("available")]
    if not usable:
        reasons = "; ".join(str(s.get("reason")) for s in sources if s.get("reason"))
        return t("models.no_source", lang, reason=reasons or "?")
    where = " · ".join(f"{names.get(str(s['name']), s['name'])}: `{s.get('endpoint')}`" for s in usable)
    return t("models.source_line", lang, where=where)
