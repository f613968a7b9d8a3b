"""The Runs page's charts (loss, grad norm, learning rate, GPU memory): whole-number step ticks, a one-point
curve drawn as a dot, localized titles, GPU memory only when the events carry it."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("gradio")

from app.pages.runs import merge_metrics  # noqa: E402
from app.pages.runs_charts import metrics_html, run_charts, step_ticks, thin, value_ticks  # noqa: E402

CPU_ROWS = [{"step": 1, "loss": 2.5, "lr": 1e-4, "grad_norm": 1.25, "tokens_per_s": 90.0},
            {"step": 2, "loss": 2.25, "lr": 2e-4, "grad_norm": 0.9, "tokens_per_s": 95.0},
            {"step": 2, "eval_loss": 2.4},
            {"step": 3, "loss": 2.0, "lr": 1.5e-4, "grad_norm": float("nan"), "tokens_per_s": 99.0}]


def x_ticks(html: str, chart: str) -> list[str]:
    figure = re.search(rf'data-chart="{chart}">(.*?)</figure>', html).group(1)
    return re.findall(r'class="ts-x-tick"[^>]*>([^<]*)<', figure)


def test_step_ticks_are_whole_numbers_whatever_the_span():
    assert step_ticks(1, 3) == [1, 2, 3]
    assert step_ticks(0, 1) == [0, 1]
    for low, high in ((1, 2), (1, 7), (5, 17), (1, 100), (3, 1000), (0, 123457)):
        ticks = step_ticks(low, high)
        assert all(isinstance(tick, int) for tick in ticks) and 2 <= len(ticks) <= 8, (low, high, ticks)
        assert low <= ticks[0] and ticks[-1] <= high
    html = metrics_html(CPU_ROWS)
    assert x_ticks(html, "loss") == ["1", "2", "3"] and x_ticks(html, "lr") == ["1", "2", "3"]  # never 1.5
    assert [round(v, 6) for v in value_ticks(2.0, 2.5)] == [2.0, 2.2, 2.4]


def test_a_one_point_curve_draws_a_dot():
    html = metrics_html([{"step": 1, "loss": 2.5, "lr": 1e-4, "grad_norm": 1.0}])
    loss = re.search(r'data-chart="loss">(.*?)</figure>', html).group(1)
    assert loss.count("<circle") == 1 and "train loss · 1: 2.5" in loss  # a visible point with its value
    assert "<path" not in loss  # no line of one point
    assert x_ticks(html, "loss") == ["0", "1", "2"]


def test_grad_norm_and_learning_rate_beside_the_loss_gpu_memory_only_on_gpu():
    html = metrics_html(CPU_ROWS, "en")
    assert re.findall(r'data-chart="(\w+)"', html) == ["loss", "grad_norm", "lr"]  # CPU events: no gpu_mem
    assert ">Gradient norm<" in html and ">Learning rate<" in html and "GPU memory" not in html
    assert "grad norm · 3" not in html  # the NaN grad norm is no point
    assert "learning rate · 2: 2.0e-04" in html  # rates in scientific notation
    gpu = metrics_html([{**row, "gpu_mem": 3.25} for row in CPU_ROWS if "loss" in row], "en")
    assert re.findall(r'data-chart="(\w+)"', gpu) == ["loss", "grad_norm", "lr", "gpu_mem"]
    zh = metrics_html(CPU_ROWS, "zh")
    assert ">梯度范数<" in zh and ">学习率<" in zh and ">损失<" in zh and ">step<" not in zh
    legend = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="25"', zh)]
    assert legend[1] - legend[0] >= 24 + 4 * 11  # "训练损失" is four wide characters: the next entry starts after it
    assert "eval loss · 2: 2.4" in html  # the eval loss is its own series in the loss chart


def test_no_step_yet_says_so_and_eval_rows_keep_their_own_series():
    assert "No step logged yet" in metrics_html([], "en")
    rows = merge_metrics([{"step": 1, "loss": 2.0}], [{"step": 1, "eval_loss": 2.2}, {"step": 2, "loss": 1.5}])
    charts = {chart.key: chart for chart in run_charts(rows)}
    assert [s.points for s in charts["loss"].series] == [((1, 2.0), (2, 1.5)), ((1, 2.2),)]


def test_a_long_run_is_drawn_through_few_points_keeping_spikes_and_the_end():
    points = tuple((step, 2.0 - step / 10_000 + (5.0 if step == 4321 else 0.0)) for step in range(1, 10_001))
    kept = thin(points)
    assert len(kept) <= 801 and kept[0] == points[0] and kept[-1] == points[-1]
    assert (4321, points[4320][1]) in kept  # the spike stays
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)
    html = metrics_html([{"step": s, "loss": v} for s, v in points])
    assert html.count(" L") < 1000 and "<circle" not in html.split('data-chart="loss"')[1].split("</figure>")[0]


def test_the_live_view_resends_the_charts_only_when_a_step_was_logged():
    import gradio as gr
    import httpx

    from app.client import TunesmithClient
    from app.pages.runs import poll

    rows = [{"step": 1, "loss": 2.5}]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metrics"):
            return httpx.Response(200, json={"data": rows, "count": len(rows)})
        if request.url.path.endswith("/logs"):
            return httpx.Response(200, json={"text": "step 1/4"})
        return httpx.Response(200, json={"id": "job_a", "state": "running", "step": 1, "total_steps": 4,
                                         "started_at": "2025-01-01T00:00:00Z"})

    client = TunesmithClient("http://studio.test/api/v1", transport=httpx.MockTransport(handler))
    first = poll(client, "en", "job_a", {})
    assert 'data-chart="loss"' in first[1]
    again = poll(client, "en", "job_a", first[3])
    assert again[1] == gr.skip() and again[3]["rows"] == rows  # nothing new: the chart is not sent again
    rows.append({"step": 2, "loss": 2.25})
    assert "train loss · 2: 2.25" in poll(client, "en", "job_a", again[3])[1]


def test_a_series_without_points_is_neither_drawn_nor_in_the_legend():
    """A run without validation data has no eval loss: its loss chart has one line and no legend naming eval loss
    (the legend used to list every series the chart could have)."""
    html = metrics_html([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
    loss = html.split('data-chart="loss"')[1].split("</figure>")[0]
    assert "train loss" in loss and "eval loss" not in loss
