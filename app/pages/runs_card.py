"""The Runs tab's status card: a run's state, progress bar, facts (step, losses, rewards, engine, lineage), its
tracker (where its data is), a grpo run's sampled replies, its error, hint and stall watchdog verdict, as HTML styled
by ``STATUS_CSS``."""

from __future__ import annotations

import html
from typing import Any

from app.client import Job, MetricRow
from app.engine_runtime import runtime_parts
from app.format import fmt_duration, fmt_float, fmt_time, state_label
from app.i18n import DEFAULT, t
from app.pages.runs_samples import SAMPLES_CSS, samples_html
from app.pages.runs_stopping import stopping_facts
from app.pages.runs_tracker import TRACKER_CSS, tracker_html

STATUS_CSS = """
.ts-status { display: flex; flex-direction: column; gap: 6px; }
.ts-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 10px; font-size: 15px; }
.ts-head code { font-size: 12px; }
.ts-badge { padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: var(--neutral-200);
            color: var(--neutral-800); }
.ts-badge.running { background: #dbeafe; color: #1e3a8a; }
.ts-badge.succeeded { background: #dcfce7; color: #14532d; }
.ts-badge.failed { background: #fee2e2; color: #7f1d1d; }
.ts-badge.cancelled { background: #e5e7eb; color: #374151; }
.ts-bar { height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden; }
.ts-bar > div { height: 100%; background: var(--color-accent); transition: width .5s; }
.ts-facts { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; color: var(--body-text-color-subdued); }
.ts-facts b { color: var(--body-text-color); font-weight: 600; }
.ts-error { border-left: 3px solid #dc2626; padding: 6px 10px; background: #fef2f2; color: #7f1d1d; font-size: 13px;
            white-space: pre-wrap; }
.ts-hint { border-left: 3px solid #2563eb; padding: 6px 10px; background: #eff6ff; color: #1e3a8a; font-size: 13px; }
.ts-empty { color: var(--body-text-color-subdued); }
""" + TRACKER_CSS + SAMPLES_CSS


def engine_summary(engine: dict | None, lang: str = DEFAULT) -> str:
    """One line of what the engine really runs with (its engine.json), e.g. 'bf16 · sdpa · checkpointing off'."""
    if not engine:
        return ""
    parts = [str(engine.get("precision") or "")]
    if engine.get("attn_implementation"):
        parts.append(t("runs.attention", lang, name=engine["attn_implementation"]))
    if "gradient_checkpointing" in engine:
        parts.append(t("runs.checkpointing_on" if engine["gradient_checkpointing"] else "runs.checkpointing_off", lang))
    if engine.get("liger_kernel"):
        parts.append(t("runs.liger", lang))
    if engine.get("batch_tokens"):
        parts.append(t("runs.batch_tokens", lang, tokens=engine["batch_tokens"]))
    parts += runtime_parts(engine, lang)  # the quantized base and the distributed backend that really ran
    return " · ".join(p for p in parts if p)


def status_facts(job: Job, rows: list[MetricRow], lang: str) -> list[tuple[str, str]]:
    """(label, value) pairs of the status card. Each metric is the newest row that has it, so an eval row
    (which has no lr or speed) does not blank the others; a run with no step yet says what it is doing."""
    state = str(job.get("state", ""))
    total, step = job.get("total_steps"), job.get("step") or 0

    def latest(*keys: str) -> Any:
        """The newest logged value of the first of ``keys`` a row has (trainers name the same fact differently)."""
        return next((r[k] for r in reversed(rows) for k in keys if r.get(k) is not None), None)

    facts = [(t("runs.fact_step", lang), f"{step}/{total}" if total else str(step))]
    if state == "running" and not rows and not step:
        facts.append((t("runs.fact_phase", lang), t("runs.phase_loading", lang)))
    stopped = job.get("stopped_early_at_step")
    for key, value in (
        ("loss", fmt_float(job.get("latest_loss"))),
        ("eval_loss", fmt_float(latest("eval_loss"))),
        ("reward_margin", fmt_float(latest("rewards/margins", "margin"), 3)),  # stages dpo/kto; rm
        ("reward_accuracy", fmt_float(latest("rewards/accuracies", "accuracy"), 3)),
        ("reward_mean", fmt_float(latest("reward"), 3)),  # stage grpo: the weighted reward of the sampled replies
        ("lr", fmt_float(latest("lr"), 3)),
        ("epoch", fmt_float(latest("epoch"), 3)),
        ("tokens_s", fmt_float(latest("tokens_per_s"), 4)),
        ("eta", fmt_duration(latest("eta_s"), lang) if state == "running" else ""),
        ("started", fmt_time(job.get("started_at"))),
        ("finished", fmt_time(job.get("finished_at"))),
        ("output", str(job.get("output") or "")),
        ("parent_run", str(job.get("parent_run") or "")),  # lineage: the run this one continued from
        ("engine", engine_summary(job.get("engine"), lang)),
        ("queued", str(job.get("waiting_for") or "") if state == "queued" else ""),
        ("stopped_early", t("runs.at_step", lang, step=stopped) if stopped else ""),
        ("stop", t("runs.stop_pending", lang) if job.get("stop_requested") else ""),
    ):
        if value:
            facts.append((t(f"runs.fact_{key}", lang), value))
    return facts + stopping_facts(job.get("engine"), lang)


def status_html(job: Job, rows: list[MetricRow], lang: str = DEFAULT) -> str:
    state = str(job.get("state", ""))
    esc = html.escape
    progress = 1.0 if state == "succeeded" else (job.get("progress") or 0.0)
    parts = [
        '<div class="ts-status">',
        '<div class="ts-head">',
        f"<b>{esc(str(job.get('name') or t('runs.default_name', lang)))}</b><code>{esc(str(job.get('id')))}</code>",
        f'<span class="ts-badge {esc(state)}">{esc(state_label(state, lang))}</span>',
        f"<span>{100 * float(progress):.0f}%</span>",
        "</div>",
        f'<div class="ts-bar"><div style="width:{max(0.0, min(1.0, float(progress))) * 100:.1f}%"></div></div>',
        '<div class="ts-facts">'
        + "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in status_facts(job, rows, lang))
        + "</div>",
    ]
    parts += [part for part in (tracker_html(job.get("engine"), str(job.get("id")), lang), samples_html(rows, lang))
              if part]  # where the tracker's data is; grpo: the latest sampled replies with their rewards
    if job.get("error"):
        parts.append(f'<div class="ts-error"><b>{esc(t("runs.error", lang))}</b> {esc(str(job["error"]))}</div>')
    if job.get("hint"):
        parts.append(f'<div class="ts-hint"><b>{esc(t("runs.hint", lang))}</b> {esc(str(job["hint"]))}</div>')
    if job.get("stalled") and state == "running":
        parts.append(stall_html(job["stalled"], lang))
    parts.append("</div>")
    return "".join(parts)


def stall_html(stall: dict[str, Any], lang: str = DEFAULT) -> str:
    """The stall watchdog's verdict: how long no step was logged, what to do, the last log lines and the
    training process's Python stack dump (folded)."""
    esc = html.escape
    head = t(
        "runs.stalled",
        lang,
        idle=fmt_duration(stall.get("idle_s"), lang),
        median=fmt_float(stall.get("median_step_s"), 3),
        step=stall.get("last_step", "?"),
    )
    dump = str(stall.get("stack_dump") or stall.get("dump_problem") or t("runs.stalled_no_dump", lang))
    return (
        f'<div class="ts-error ts-stalled"><b>{esc(head)}</b> {esc(t("runs.stalled_hint", lang))}'
        f"<details><summary>{esc(t('runs.stalled_log', lang))}</summary><pre>{esc(str(stall.get('log_tail') or ''))}"
        f"</pre></details><details><summary>{esc(t('runs.stalled_stack', lang))}</summary><pre>{esc(dump)}</pre>"
        "</details></div>"
    )


def empty_status(lang: str = DEFAULT) -> str:
    return f'<div class="ts-empty">{html.escape(t("runs.empty", lang))}</div>'
