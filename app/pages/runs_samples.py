"""The Runs card's sampled replies of a grpo run: the newest training row's ``samples`` (two replies per logging
step, written by the engine: backend.engine.log_lines.latest_samples) with their weighted reward and each reward
function's score, as an HTML table."""

from __future__ import annotations

import html
from typing import Any

from app.client import MetricRow
from app.format import fmt_float
from app.i18n import DEFAULT, t

SAMPLES_CSS = """
.ts-samples { font-size: 13px; }
.ts-samples table { border-collapse: collapse; width: 100%; margin-top: 4px; }
.ts-samples th, .ts-samples td { border: 1px solid var(--border-color-primary); padding: 3px 6px; text-align: left;
                                 vertical-align: top; }
.ts-samples td.ts-text { white-space: pre-wrap; word-break: break-word; width: 38%; }
"""


def latest_samples(rows: list[MetricRow]) -> tuple[Any, list[dict]]:
    """(step, samples) of the newest row that carries samples; (None, []) when none does."""
    for row in reversed(rows):
        samples = row.get("samples")
        if isinstance(samples, list) and samples:
            return row.get("step"), [s for s in samples if isinstance(s, dict)]
    return None, []


def samples_html(rows: list[MetricRow], lang: str = DEFAULT) -> str:
    """'' for a run without samples (every stage but grpo)."""
    step, samples = latest_samples(rows)
    if not samples:
        return ""
    esc = html.escape
    names = list(dict.fromkeys(name for s in samples for name in (s.get("rewards") or {})))
    head = [t("runs.sample_prompt", lang), t("runs.sample_reply", lang), t("runs.sample_reward", lang), *names]
    body = []
    for sample in samples:
        scores = sample.get("rewards") or {}
        cells = [f'<td class="ts-text">{esc(str(sample.get("prompt") or ""))}</td>',
                 f'<td class="ts-text">{esc(str(sample.get("completion") or ""))}</td>',
                 f"<td><b>{esc(fmt_float(sample.get('reward'), 3) or '-')}</b></td>",
                 *(f"<td>{esc(fmt_float(scores.get(name), 3) or '-')}</td>" for name in names)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="ts-samples"><b>{esc(t("runs.samples_title", lang, step=step))}</b><table><tr>'
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table></div>")
