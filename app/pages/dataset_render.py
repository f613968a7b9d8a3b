"""HTML for "preview as the model sees it": token runs (trained / masked / cut) and the length histogram."""

from __future__ import annotations

import html

from app.i18n import DEFAULT, t


def empty_render(lang: str = DEFAULT) -> str:
    return f'<div class="ts-empty">{html.escape(t("render.empty", lang))}</div>'


EMPTY_RENDER = empty_render()


RENDER_CSS = """
.ts-empty { color: var(--body-text-color-subdued); padding: 12px 0; }
.ts-legend { font-size: 12px; margin: 0 0 8px 0; display: flex; gap: 12px; flex-wrap: wrap; align-items: center; }
.ts-sample { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 10px; }
.ts-sample-head { font-size: 12px; color: var(--body-text-color-subdued); margin-bottom: 6px; }
.ts-tokens { white-space: pre-wrap; word-break: break-word; font-family: var(--font-mono, monospace);
             font-size: 12.5px; line-height: 1.6; margin: 0; }
.ts-trained { background: #bbf7d0; color: #14532d; border-radius: 3px; }
.ts-masked { color: var(--body-text-color-subdued); opacity: .85; }
.ts-cut { text-decoration: line-through; background: #fee2e2; color: #7f1d1d; opacity: .8; }
.ts-nl { opacity: .45; font-size: 10px; }
.ts-hist { position: relative; display: flex; align-items: flex-end; gap: 2px; height: 130px;
           border-bottom: 1px solid var(--border-color-primary); margin-top: 18px; }
.ts-bar { flex: 1 1 0; background: #60a5fa; border-radius: 2px 2px 0 0; min-width: 3px; }
.ts-bar.ts-over { background: #f87171; }
.ts-cutline { position: absolute; top: -16px; bottom: 0; border-left: 2px dashed #dc2626; }
.ts-cutline span { position: absolute; top: 0; left: 4px; font-size: 11px; color: #dc2626; white-space: nowrap; }
.ts-axis { display: flex; justify-content: space-between; font-size: 11px; color: var(--body-text-color-subdued); }
"""


def _segment_html(segment: dict, lang: str) -> str:
    """One run of tokens: escaped, newlines shown as ↵ and kept as line breaks."""
    text = html.escape(str(segment.get("text", "")))
    text = text.replace("\n", '<span class="ts-nl">↵</span>\n')
    trained = bool(segment.get("trained"))
    classes = "ts-trained" if trained else "ts-masked"
    title = t("render.trained_title" if trained else "render.masked_title", lang)
    if segment.get("cut"):
        classes += " ts-cut"
        title = t("render.cut_title", lang)
    return f'<span class="{classes}" title="{title}">{text}</span>'


def render_samples_html(result: dict, lang: str = DEFAULT) -> str:
    """The preview's samples as token runs: trained ones highlighted, masked ones dimmed, cut ones struck."""
    samples = result.get("samples") or []
    if not samples:
        return f'<div class="ts-empty">{html.escape(t("render.no_samples", lang))}</div>'
    template = (result.get("tokenizer") or {}).get("chat_template")
    source = t("render.own_template" if template == "own" else "render.fallback_template", lang)
    parts = [f'<div class="ts-legend"><span>{html.escape(t("render.rendered_with", lang, source=source))}</span>'
             f'<span class="ts-trained">&nbsp;{html.escape(t("render.legend_trained", lang))}&nbsp;</span>'
             f'<span class="ts-masked">{html.escape(t("render.legend_masked", lang))}</span>'
             f'<span class="ts-cut">&nbsp;{html.escape(t("render.legend_cut", lang))}&nbsp;</span></div>']
    for index, sample in enumerate(samples, start=1):
        head = t("render.sample_head", lang, index=index, tokens=sample.get("num_tokens", "?"),
                 trained=sample.get("num_trained", "?"))
        if sample.get("truncated"):
            head += " · " + t("render.truncated", lang)
        body = "".join(_segment_html(seg, lang) for seg in sample.get("segments") or [] if isinstance(seg, dict))
        parts.append(f'<div class="ts-sample"><div class="ts-sample-head">{html.escape(head)}</div>'
                     f'<div class="ts-tokens">{body}</div></div>')
    return "".join(parts)


def length_histogram_html(lengths: dict, cutoff_len: int, lang: str = DEFAULT) -> str:
    """Bars of the token-length histogram (red: over the cutoff) with a dashed line at the cutoff. The axis
    starts at 0 at the lowest (a length is never negative)."""
    bins = [b for b in lengths.get("histogram") or [] if isinstance(b, dict)]
    if not bins:
        return f'<div class="ts-empty">{html.escape(t("render.no_lengths", lang))}</div>'
    peak = max(b.get("count", 0) for b in bins) or 1
    lo, hi = max(0, bins[0]["from"]), bins[-1]["to"]
    bars = "".join(
        f'<div class="ts-bar{" ts-over" if b.get("over_cutoff") else ""}" '
        f'style="height:{b["count"] / peak * 100 if b["count"] else 0:.1f}%" '
        f'title="{html.escape(t("render.bin_title", lang, lo=max(0, b["from"]), hi=b["to"] - 1, count=b["count"]))}">'
        "</div>"
        for b in bins)
    edge = cutoff_len + 1
    if lo < edge < hi:
        left = (edge - lo) / (hi - lo) * 100
        label = html.escape(t("render.cutoff", lang, cutoff=cutoff_len))
        bars += f'<div class="ts-cutline" style="left:{left:.2f}%"><span>{label}</span></div>'
        note = ""
    elif edge >= hi:
        beyond = (lengths.get("longer_than") or {}).get("count")  # the chart ends before the longest sample
        note = " · " + t("render.cutoff_beyond" if beyond else "render.cutoff_above", lang, cutoff=cutoff_len)
    else:
        note = " · " + t("render.cutoff_below", lang, cutoff=cutoff_len)
    axis = html.escape(t("render.axis", lang, peak=peak) + note)
    left_out = lengths.get("longer_than") or {}
    tail = ""
    if left_out.get("count"):  # outliers beyond the 99th percentile: counted, not drawn (they squashed the bars)
        text = t("render.longer_than", lang, count=left_out["count"], tokens=left_out.get("tokens"),
                 max=lengths.get("max"))
        tail = f'<div class="ts-axis ts-left-out">{html.escape(text)}</div>'
    return (f'<div class="ts-hist" title="{html.escape(t("render.hist_title", lang, peak=peak))}">{bars}</div>'
            f'<div class="ts-axis"><span>{lo}</span><span>{axis}</span><span>{hi}</span></div>{tail}')


def truncation_markdown(result: dict, cutoff_len: int, lang: str = DEFAULT) -> str:
    """The line under the histogram: how many samples exceed the cutoff, plus the length summary."""
    lengths = result.get("lengths") or {}
    count, over = lengths.get("count", 0), lengths.get("truncated", 0)
    share = lengths.get("truncated_share", over / count if count else 0.0)
    lines = [t("render.over_cutoff", lang, over=over, total=count, share=f"{share:.1%}", cutoff=cutoff_len),
             t("render.length_summary", lang, min=lengths.get("min"), p50=lengths.get("p50"), p95=lengths.get("p95"),
               max=lengths.get("max"), mean=lengths.get("mean"))]
    rows = result.get("rows") or {}
    if rows.get("capped"):
        lines.append(t("render.capped", lang, counted=rows.get("counted"), total=rows.get("total")))
    aside = rows.get("set_aside") or 0
    if aside:
        lines.append(t("render.set_aside", lang, count=aside))
    dropped = lengths.get("no_trainable_tokens") or 0
    if dropped:  # which rows, and why (issue 12 group 8: "1 sample would be dropped" named none)
        lines.append(t("render.no_trained_tokens", lang, count=dropped) + _named_rows(
            "render.dropped_rows", lengths.get("dropped_rows"), dropped, lang))
    if over:
        lines.append(_named_rows("render.longest_truncated", lengths.get("longest_truncated"), over, lang).strip())
    return "  \n".join(line for line in lines if line)


DROPPED_REASONS = ("cutoff", "no_reply")


def _row_text(row: dict, lang: str) -> str:
    """``row 7 (812 tokens)``, with why training drops it when it is a dropped row."""
    reason = row.get("reason")
    key = f"render.dropped_{reason}" if reason in DROPPED_REASONS else "render.row_tokens"
    return t(key, lang, row=row.get("row"), tokens=row.get("tokens"))


def _named_rows(lead_key: str, rows: list | None, total: int, lang: str) -> str:
    """`` Dropped: row 7 (…); row 12 (…) and 3 more`` for the rows the preview names ("" when it names none)."""
    named = [r for r in rows or [] if isinstance(r, dict) and r.get("row") is not None]
    if not named:
        return ""
    more = t("render.rows_more", lang, count=total - len(named)) if total > len(named) else ""
    return " " + t(lead_key, lang) + " " + t("render.rows_sep", lang).join(_row_text(r, lang) for r in named) + more
