"""Metric charts of the Runs page and of Compare runs, drawn here as inline SVG (in a ``gr.HTML``).

Why not ``gr.LinePlot``: its Vega-Lite axis picks fractional ticks (step 0.5) on short runs and draws nothing for
a one-point line, and neither can be configured from Python. Here the step axis only ever has whole-number ticks,
a series with one point is a dot, every point carries a hover title (``train loss · step 3: 2.346``), and the
chart is a pure function of the metric rows, so a unit test can read what the user sees.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.client import MetricRow
from app.i18n import DEFAULT, t

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 40, 42  # margins: value labels, title + legend, step labels + axis title
DOT_LIMIT = 60  # a series with at most this many points shows each point as a dot
LINE_LIMIT = 800  # a longer series is drawn through its lowest and highest point of each of LINE_LIMIT/2 buckets
PALETTE = ("#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
           "#65a30d", "#7c3aed", "#0d9488")

Point = tuple[int, float]


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Chart:
    key: str  # data-chart attribute: loss, grad_norm, lr, gpu_mem, compare_loss, compare_eval_loss
    title: str
    y_title: str
    series: tuple[Series, ...]
    fmt: Callable[[float], str] = lambda v: f"{v:.4g}"  # a value as its tick label and hover text show it


def points_of(rows: Sequence[MetricRow], key: str, *more: str) -> tuple[Point, ...]:
    """(step, value) of every row with a finite number under ``key`` (or, in a row without it, under the first of
    ``more`` it has: trainers name the same fact differently), by step (the last row of a step wins)."""
    found: dict[int, float] = {}
    for row in rows:
        step = row.get("step")
        value = next((row[k] for k in (key, *more) if row.get(k) is not None), None)
        if isinstance(step, (int, float)) and not isinstance(step, bool) and isinstance(value, (int, float)) \
                and not isinstance(value, bool) and math.isfinite(value):
            found[int(step)] = float(value)
    return tuple(sorted(found.items()))


def thin(points: Sequence[Point], limit: int = LINE_LIMIT) -> tuple[Point, ...]:
    """At most about ``limit`` points that draw the same line at chart size: the lowest and the highest point of
    each of ``limit / 2`` runs of consecutive steps (spikes stay), in step order; the last point always."""
    if len(points) <= limit:
        return tuple(points)
    size = math.ceil(len(points) / (limit // 2))
    kept: list[Point] = []
    for start in range(0, len(points), size):
        bucket = points[start:start + size]
        kept += sorted({min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])})
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return tuple(kept)


def step_ticks(low: int, high: int, max_ticks: int = 7) -> list[int]:
    """Whole-number ticks covering [low, high]: every 1, 2, 5, 10, 20, 50… steps, at most about ``max_ticks``."""
    span = max(high - low, 1)
    every = 1
    while span / every > max_ticks:
        every = _next_nice(every)
    first = math.ceil(low / every) * every
    return list(range(first, high + 1, every))


def _next_nice(every: int) -> int:
    """1 -> 2 -> 5 -> 10 -> 20 -> 50 -> 100 …"""
    power = 10 ** int(math.floor(math.log10(every)))
    lead = every // power
    return {1: 2, 2: 5, 5: 10}.get(lead, 10) * power


def value_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    every = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / every - 1e-9) * every
    return [first + i * every for i in range(int((high - first) / every + 1e-9) + 1)]


def _domain(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.06 or (abs(high) * 0.1 or 1.0)
    return low - pad, high + pad


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def chart_svg(chart: Chart, x_title: str) -> str:
    """One chart as an SVG element; '' when no series has a point."""
    drawn = [s for s in chart.series if s.points]
    if not drawn:
        return ""
    steps = [p[0] for s in drawn for p in s.points]
    low_step, high_step = min(steps), max(steps)
    if low_step == high_step:
        low_step, high_step = max(low_step - 1, 0), low_step + 1
    low, high = _domain([p[1] for s in drawn for p in s.points])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: float) -> float:
        return LEFT + (step - low_step) / (high_step - low_step) * plot_w

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_h

    out = [f'<svg class="ts-chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_esc(chart.title)}" '
           'xmlns="http://www.w3.org/2000/svg" font-size="11" fill="currentColor">',
           f'<text class="ts-chart-title" x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="13">'
           f'{_esc(chart.title)}</text>']
    for value in value_ticks(low, high):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   'stroke="currentColor" stroke-opacity="0.15"/>'
                   f'<text class="ts-y-tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                   f'{_esc(chart.fmt(value))}</text>')
    for step in step_ticks(low_step, high_step):
        out.append(f'<line x1="{x(step):.1f}" x2="{x(step):.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" '
                   'stroke="currentColor" stroke-opacity="0.5"/>'
                   f'<text class="ts-x-tick" x="{x(step):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{step}'
                   '</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" fill-opacity="0.75">'
               f'{_esc(x_title)}</text>'
               f'<text x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" fill-opacity="0.75" '
               f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{_esc(chart.y_title)}</text>')
    for series in drawn:
        out.append(_series_svg(series, x, y, chart.fmt))
    if len(drawn) > 1:  # a series without points (eval loss of a run without validation data) is not listed
        out.append(_legend_svg(drawn))
    out.append("</svg>")
    return "".join(out)


def _series_svg(series: Series, x: Callable[[float], float], y: Callable[[float], float],
                fmt: Callable[[float], str]) -> str:
    colour, label = _esc(series.colour), _esc(series.label)
    parts = [f'<g class="ts-series" data-series="{label}">']
    if len(series.points) > 1:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(s):.1f},{y(v):.1f}"
                        for i, (s, v) in enumerate(thin(series.points)))
        parts.append(f'<path class="ts-line" d="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'stroke-linejoin="round"><title>{label}</title></path>')
    if len(series.points) <= DOT_LIMIT:
        parts += [f'<circle class="ts-point" cx="{x(s):.1f}" cy="{y(v):.1f}" r="{3.5 if len(series.points) == 1 else 2.5}"'
                  f' fill="{colour}"><title>{label} · {s}: {_esc(fmt(v))}</title></circle>' for s, v in series.points]
    parts.append("</g>")
    return "".join(parts)


def _text_width(text: str) -> float:
    """About how wide ``text`` is at font size 11: CJK characters are about twice as wide as Latin ones."""
    return sum(11.0 if ord(char) >= 0x2E80 else 6.5 for char in text)


def _legend_svg(series: Sequence[Series]) -> str:
    parts, cursor = ['<g class="ts-legend">'], LEFT
    for item in series:
        parts.append(f'<rect x="{cursor}" y="25" width="10" height="3" fill="{_esc(item.colour)}"/>'
                     f'<text x="{cursor + 14}" y="30">{_esc(item.label)}</text>')
        cursor += 24 + _text_width(item.label)
    parts.append("</g>")
    return "".join(parts)


def charts_html(charts: Sequence[Chart], lang: str = DEFAULT, empty_key: str = "chart.no_points") -> str:
    """The charts that have points, side by side (wrapping), or a line saying there is nothing to draw yet."""
    drawn = [(chart, chart_svg(chart, t("chart.step", lang))) for chart in charts]
    figures = [f'<figure class="ts-chart" data-chart="{_esc(c.key)}">{svg}</figure>' for c, svg in drawn if svg]
    if not figures:
        return f'<div class="ts-empty">{_esc(t(empty_key, lang))}</div>'
    return f'<div class="ts-charts">{"".join(figures)}</div>'


def _general(value: float) -> str:
    return f"{value:.4g}"


def _lr(value: float) -> str:
    return f"{value:.1e}"


def _gib(value: float) -> str:
    return f"{value:.3g} GiB"


def run_charts(rows: Sequence[MetricRow], lang: str = DEFAULT) -> list[Chart]:
    """The charts of one run: loss (train and eval), the stage's own curves (:func:`stage_charts`), grad norm,
    learning rate, and GPU memory when the events carry it (the engine logs it on a GPU only; on a CPU there is no
    such chart)."""
    loss = Chart("loss", t("chart.loss_title", lang), t("chart.loss", lang), (
        Series(t("chart.train_loss", lang), PALETTE[0], points_of(rows, "loss")),
        Series(t("chart.eval_loss", lang), PALETTE[1], points_of(rows, "eval_loss"))))
    charts = [loss]
    for key, colour, fmt in (("grad_norm", PALETTE[2], _general), ("lr", PALETTE[4], _lr),
                             ("gpu_mem", PALETTE[3], _gib)):
        name = t(f"chart.{key}", lang)
        charts.append(Chart(key, t(f"chart.{key}_title", lang), name, (Series(name, colour, points_of(rows, key)),), fmt))
    return charts[:1] + stage_charts(rows, lang) + charts[1:]  # the stage's own curves next to the loss


def reward_function_names(rows: Sequence[MetricRow]) -> list[str]:
    """The reward functions of a grpo run, in the order its rows name them (``rewards/<name>/mean`` keys)."""
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith("rewards/") and key.endswith("/mean") and key.count("/") >= 2:
                names[key[len("rewards/"):-len("/mean")]] = None
    return list(names)


def _train_and_eval(rows: Sequence[MetricRow], lang: str, *keys: str) -> tuple[Series, ...]:
    """A train series of the first of ``keys`` a row has, and an eval series of their ``eval_`` twins."""
    return (Series(t("chart.train", lang), PALETTE[0], points_of(rows, *keys)),
            Series(t("chart.eval", lang), PALETTE[1], points_of(rows, *(f"eval_{key}" for key in keys))))


def stage_charts(rows: Sequence[MetricRow], lang: str = DEFAULT) -> list[Chart]:
    """The curves of the stage that wrote ``rows`` (a chart without points is not drawn, so each stage shows its
    own): preference stages (dpo/kto: ``rewards/margins``, ``rewards/accuracies``; rm: ``margin``, ``accuracy``)
    their reward margin and accuracy, train and eval; grpo the mean reward (weighted total and one series per
    reward function), the KL to the reference and the mean length of the sampled replies."""
    rewards = (Series(t("chart.reward_total", lang), PALETTE[0], points_of(rows, "reward")),
               *(Series(name, PALETTE[(i + 1) % len(PALETTE)], points_of(rows, f"rewards/{name}/mean"))
                 for i, name in enumerate(reward_function_names(rows))))
    return [
        Chart("reward_margin", t("chart.reward_margin_title", lang), t("chart.reward_margin", lang),
              _train_and_eval(rows, lang, "rewards/margins", "margin")),
        Chart("reward_accuracy", t("chart.reward_accuracy_title", lang), t("chart.reward_accuracy", lang),
              _train_and_eval(rows, lang, "rewards/accuracies", "accuracy")),
        Chart("reward", t("chart.reward_title", lang), t("chart.reward", lang), rewards),
        Chart("kl", t("chart.kl_title", lang, kl="KL"), "KL", (Series("KL", PALETTE[3], points_of(rows, "kl")),)),
        Chart("completion_length", t("chart.completion_length_title", lang), t("chart.tokens", lang),
              (Series(t("chart.tokens", lang), PALETTE[5], points_of(rows, "completions/mean_length")),)),
    ]


def metrics_html(rows: Sequence[MetricRow], lang: str = DEFAULT) -> str:
    """The Runs page's charts of the selected run."""
    return charts_html(run_charts(rows, lang), lang)


def series_of_runs(runs: Sequence[tuple[str, Sequence[MetricRow]]], key: str, *more: str) -> tuple[Series, ...]:
    """One series per run (label, rows), in a colour of its own (the same in every chart of the comparison); a
    run's points are its ``key`` values (or those of the first of ``more`` a row has, as :func:`points_of`)."""
    return tuple(Series(label, PALETTE[i % len(PALETTE)], points_of(rows, key, *more))
                 for i, (label, rows) in enumerate(runs))


def stage_compare_charts(runs: Sequence[tuple[str, Sequence[MetricRow]]], lang: str = DEFAULT) -> list[Chart]:
    """Compare runs beyond the loss: the mean reward of grpo runs, the reward margin and accuracy of dpo/kto/rm
    runs (one series per run; a chart no compared run logs is not drawn)."""
    return [Chart("compare_reward", t("chart.reward_title", lang), t("chart.reward", lang),
                  series_of_runs(runs, "reward")),
            Chart("compare_reward_margin", t("chart.reward_margin_title", lang), t("chart.reward_margin", lang),
                  series_of_runs(runs, "rewards/margins", "margin")),
            Chart("compare_reward_accuracy", t("chart.reward_accuracy_title", lang), t("chart.reward_accuracy", lang),
                  series_of_runs(runs, "rewards/accuracies", "accuracy"))]


CHARTS_CSS = """
.ts-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 8px; }
.ts-chart { margin: 0; border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px;
            color: var(--body-text-color); background: var(--background-fill-primary); }
.ts-chart-svg { width: 100%; height: auto; display: block; }
.ts-chart-svg .ts-point:hover { r: 5; }
.ts-empty { color: var(--body-text-color-subdued); }
"""
