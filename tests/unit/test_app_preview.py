"""The Datasets page's "preview as the model sees it" rendering: escaping, highlighting, histogram, summary."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio")

from app.pages.dataset_render import length_histogram_html, render_samples_html, truncation_markdown  # noqa: E402

RESULT = {
    "samples": [{
        "segments": [
            {"text": "<|im_start|>user\n<script>alert('x')</script> & more<|im_end|>\n<|im_start|>assistant\n",
             "trained": False},
            {"text": "Fine <b>bold</b>.<|im_end|>", "trained": True},
            {"text": "\n", "trained": False, "cut": True},
        ],
        "num_tokens": 40, "num_trained": 9, "truncated": True,
    }],
    "lengths": {"count": 10, "min": 5, "max": 40, "mean": 20.5, "p50": 20, "p95": 38, "truncated": 3,
                "truncated_share": 0.3, "no_trainable_tokens": 1,
                "histogram": [{"from": 5, "to": 17, "count": 4, "over_cutoff": False},
                              {"from": 17, "to": 29, "count": 3, "over_cutoff": False},
                              {"from": 29, "to": 41, "count": 3, "over_cutoff": True}]},
    "rows": {"total": 25000, "counted": 20000, "capped": True},
    "tokenizer": {"chat_template": "own"},
}


def test_sample_html_escapes_content_and_marks_trained_masked_and_cut_tokens():
    page = render_samples_html(RESULT)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "&lt;|im_start|&gt;user" in page
    assert '<span class="ts-trained" title="trained: carries loss">Fine &lt;b&gt;bold&lt;/b&gt;.&lt;|im_end|&gt;</span>' in page
    assert 'class="ts-masked ts-cut"' in page
    assert page.count('<span class="ts-nl">↵</span>\n') == 4  # newlines stay visible and still break lines
    assert "Sample 1 · 40 tokens · 9 trained · truncated" in page
    assert "own chat template" in page
    fallback = render_samples_html({**RESULT, "tokenizer": {"chat_template": "chatml fallback"}})
    assert "ChatML fallback" in fallback


def test_histogram_marks_the_cutoff_and_the_bars_over_it():
    bars = length_histogram_html(RESULT["lengths"], cutoff_len=28)
    assert bars.count('class="ts-bar"') == 2 and bars.count('class="ts-bar ts-over"') == 1
    assert 'class="ts-cutline" style="left:66.67%"' in bars and "cutoff 28" in bars
    assert "above the longest sample" in length_histogram_html(RESULT["lengths"], cutoff_len=4096)
    assert "ts-empty" in length_histogram_html({"histogram": []}, cutoff_len=28)


def test_truncation_line_counts_share_cap_and_dropped_samples():
    text = truncation_markdown(RESULT, 28)
    assert "3 of 10 samples (30.0%) exceed the cutoff of 28 tokens and would be truncated" in text
    assert "first 20000 of 25000 rows" in text
    assert "1 sample has no trained token" in text


def test_client_asks_for_the_preview_with_its_parameters():
    import httpx

    from app.client import TunesmithClient

    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        return httpx.Response(200, json=RESULT)

    client = TunesmithClient("http://api/api/v1", transport=httpx.MockTransport(handler))
    assert client.preview_dataset("ds1", "tiny-llama", cutoff_len=64, train_on_prompt=True) == RESULT
    assert seen["url"] == ("http://api/api/v1/datasets/ds1/preview?model=tiny-llama&cutoff_len=64&samples=3"
                           "&train_on_prompt=true")


def test_outliers_left_out_of_the_chart_are_counted_and_the_axis_starts_at_zero():
    """Issue 12 group 8: the axis read -123 and one outlier squashed every bar."""
    lengths = {**RESULT["lengths"], "max": 20000, "longer_than": {"tokens": 247, "count": 2},
               "histogram": [{"from": 0, "to": 17, "count": 4, "over_cutoff": False},
                             {"from": 17, "to": 29, "count": 3, "over_cutoff": False}]}
    bars = length_histogram_html(lengths, cutoff_len=4096)
    assert "2 samples longer than 247 tokens are left out of the chart (the longest has 20000)" in bars
    assert '<div class="ts-axis"><span>0</span>' in bars
    assert "cutoff 4096 lies beyond the end of the chart" in bars and "above the longest" not in bars
    assert "left out" not in length_histogram_html(RESULT["lengths"], cutoff_len=28)
    assert "未画入图中" in length_histogram_html(lengths, cutoff_len=4096, lang="zh")


def test_dropped_and_truncated_rows_are_named_with_the_reason():
    lengths = {**RESULT["lengths"], "no_trainable_tokens": 3,
               "dropped_rows": [{"row": 7, "tokens": 812, "reason": "cutoff"},
                                {"row": 9, "tokens": 12, "reason": "no_reply"}],
               "longest_truncated": [{"row": 4, "tokens": 40}]}
    text = truncation_markdown({**RESULT, "lengths": lengths}, 28)
    assert ("3 samples have no trained token within the cutoff and would be dropped by training. Dropped: "
            "row 7 (812 tokens: its prompt fills the cutoff, the reply starts after it); "
            "row 9 (12 tokens: nothing in it is trained, e.g. an empty reply) and 1 more") in text
    assert "Longest samples over the cutoff: row 4 (40 tokens) and 2 more" in text
    zh = truncation_markdown({**RESULT, "lengths": lengths}, 28, lang="zh")
    assert "第 7 行（812 个词元：提示已占满截断长度" in zh
    # an older preview result without named rows still reads
    assert "Dropped" not in truncation_markdown(RESULT, 28)
