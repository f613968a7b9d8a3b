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
