"""The i18n layer: catalogs in step, the request's language, and no English app string left on a page in 中文."""

from __future__ import annotations

import json
import re
import string
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("gradio")

import gradio as gr  # noqa: E402
from gradio.i18n import I18nData  # noqa: E402

from app.i18n import LANGUAGES, accept_language, catalog, localized, request_lang, t  # noqa: E402

# Proper nouns and technical terms that stay as they are in a Chinese UI (LLaMA-Factory's zh UI keeps them too).
ALLOWED_LATIN = {
    "lora", "lora+", "qlora", "dora", "rslora", "pissa", "deepspeed", "zero", "fsdp", "fsdp2", "ddp", "gpu", "gpus", "cpu",
    "api", "json", "jsonl", "yaml", "csv", "parquet", "txt", "zip", "sft", "pt", "dpo", "kto", "ipo", "adamw",
    "adafactor", "neftune", "liger", "flashattention", "pytorch", "sdpa", "bf16", "fp16", "fp32", "pure_bf16",
    "auto", "hugging", "face", "llama-factory", "tunesmith", "readme", "nf4", "mlp", "embed_tokens", "lm_head",
    "norm", "q_proj", "v_proj", "all-linear", "bitsandbytes", "cuda", "rouge-l", "bleu", "bleu-4", "alpaca",
    "sharegpt", "messages", "chatml", "ollama", "gguf", "safetensors", "hinge", "sigmoid", "sigmoid_norm",
    "apo_zero", "gaussian", "default", "true", "false", "b", "v", "r", "lr", "id", "eos", "http", "smollm2",
    "instruction", "input", "output", "conversations", "from", "value", "role", "content", "chosen", "rejected",
    "label", "text", "system", "history", "dataset_info", "data", "identity", "ada", "acme", "labs", "smol-lora-r8",
    "predictions", "ppl", "adapter", "merged", "gloo", "cosine", "linear", "orpo", "simpo", "rm", "grpo",
    "p95", "openai", "eta", "top-p", "f1", "peft", "q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16", "bfloat16",
    "llama", "cpp", "lm", "studio", "modelfile", "tensorboard", "mlflow", "weights", "biases", "uri",
    "modelscope", "python",
}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_+\-']*[A-Za-z0-9+]|[A-Za-z]")


def english_words(text: str) -> list[str]:
    """Latin-script words of ``text`` that are not proper nouns or terms, outside `code`, URLs and HTML tags."""
    text = re.sub(r"`[^`]*`|\{[^}]*\}", " ", text)  # code and format placeholders
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"https?://\S+|\b\d+(\.\d+)?e-?\d+\b", " ", text)  # URLs, numbers such as 2e-4
    return [w for w in WORD.findall(text) if len(w) > 1 and w.lower().strip("-'") not in ALLOWED_LATIN]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    reference = LANGUAGES["en"].messages
    for code, lang in LANGUAGES.items():
        missing = sorted(k for k in reference if k not in lang.messages and not k.endswith(".one"))
        assert not missing, f"{code} lacks {missing}"
        extra = sorted(set(lang.messages) - set(reference))
        assert not extra, f"{code} has keys English lacks: {extra}"
        for key, template in lang.messages.items():
            base = reference[key.removesuffix(".one")] if key.endswith(".one") else reference[key]
            # English may leave out an argument that others spell out (error.api: the kind of refusal)
            assert placeholders(template) <= placeholders(base) | {"count", "reason"}, (code, key)


def test_chinese_catalog_uses_llamafactory_terms_and_no_english_words() -> None:
    zh = LANGUAGES["zh"].messages
    for key, term in {"field.learning_rate": "学习率", "field.num_epochs": "训练轮数", "field.cutoff_len": "截断长度",
                      "field.compute_type": "计算类型", "field.rank": "LoRA 秩", "field.alpha": "LoRA 缩放系数",
                      "field.gradient_accumulation_steps": "梯度累积", "field.val_size": "验证集比例",
                      "field.lr_scheduler": "学习率调节器"}.items():
        assert term in zh[key], key
    leftovers = {key: english_words(text) for key, text in zh.items() if english_words(text)}
    assert not leftovers, leftovers


def test_lookup_formats_plurals_and_nested_markers() -> None:
    assert t("train.started", "zh", name="r1", id="job_1", state="queued").startswith("✓ 已开始运行 **r1**")
    one = t("config.filled_except", "en", origin="x", count=1)
    assert "1 value that" in one and "values" in t("config.filled_except", "en", origin="x", count=2)
    marker = t("form.info", help=t("help.rank"), bounds="≥ 1")
    assert isinstance(marker, I18nData)
    assert catalog("zh")[marker.key] == "低秩更新的宽度：越大学得越多，占用内存也越多。（≥ 1）"
    assert catalog("en")[marker.key].endswith("costs more memory. (≥ 1)")
    with pytest.raises(KeyError):
        t("no.such.key")


def request(referer: str = "", cookie: str | None = None, accept: str = "") -> Any:
    return SimpleNamespace(headers={"referer": referer, "accept-language": accept},
                           cookies={"tunesmith_lang": cookie} if cookie else {})


def test_request_language_url_then_cookie_then_browser() -> None:
    assert request_lang(request("http://h/?lang=zh", cookie="en", accept="en")) == "zh"
    assert request_lang(request("http://h/?lang=xx", cookie="zh", accept="en")) == "zh"
    assert request_lang(request("http://h/", accept="fr-FR,zh-CN;q=0.8,en;q=0.5")) == "zh"
    assert request_lang(request("http://h/", accept="de")) == "en"
    assert request_lang(None) == "en"
    assert accept_language("en;q=0.2, zh-TW;q=0.9") == "zh"


def test_localized_handlers_receive_the_language_and_gradio_sees_the_request() -> None:
    from gradio.helpers import special_args

    handler = localized(lambda lang, x: f"{lang}:{x}")
    inputs, *_ = special_args(handler, ["v"], request=None)
    assert len(inputs) == 2  # Gradio put a request slot first
    assert handler(request("http://h/?lang=zh"), "v") == "zh:v"

    def stream(lang, x):
        yield lang
        yield x
    assert list(localized(stream)(request(cookie="zh"), "v")) == ["zh", "v"]


# -- every page in 中文 --------------------------------------------------------------------------------------


def shown_strings(block: Any) -> list[Any]:
    """The strings a component shows: label, help, placeholder, text of buttons/Markdown, choice labels."""
    shown = [getattr(block, attr, None) for attr in ("label", "info", "placeholder")]
    if isinstance(block, (gr.Markdown, gr.Button, gr.UploadButton, gr.DownloadButton)):
        shown.append(block.value)
    for choice in getattr(block, "choices", None) or []:
        if isinstance(choice, (tuple, list)) and str(choice[0]) != str(choice[1]):
            shown.append(choice[0])  # a choice whose label is its value (bf16, cosine) shows a term, not prose
    return [s for s in shown if s not in (None, "")]


def walk(block: Any):
    yield block
    for child in getattr(block, "children", None) or []:
        yield from walk(child)


@pytest.fixture(scope="module")
def studio() -> gr.Blocks:
    from app.main import build_app

    return build_app("http://127.0.0.1:9/api/v1")


TRANSLATED_TABS = ["tab-datasets", "tab-train", "tab-runs", "tab-export", "tab-evaluate", "tab-chat"]


@pytest.mark.parametrize("tab_id", TRANSLATED_TABS)
def test_a_tab_in_chinese_has_no_english_app_string_left(studio: gr.Blocks, tab_id: str) -> None:
    zh = catalog("zh")
    tab = next(b for b in studio.blocks.values() if getattr(b, "elem_id", None) == tab_id)
    untranslated, english = [], []
    for block in walk(tab):
        for value in shown_strings(block):
            if isinstance(value, I18nData):
                text = zh[value.key]
            elif isinstance(value, str) and value.startswith("__i18n__"):
                text = zh[json.loads(value.removeprefix("__i18n__"))["key"]]  # Gradio kept the marker as text
            else:
                text = str(value)
                if english_words(text):
                    untranslated.append((getattr(block, "elem_id", None), text[:80]))
                continue
            if english_words(text):
                english.append((getattr(block, "elem_id", None), text[:80], english_words(text)))
    assert not untranslated, f"strings not going through app.i18n.t: {untranslated}"
    assert not english, f"English left in the Chinese text: {english}"


def test_the_header_switch_and_every_tab_label_are_translated(studio: gr.Blocks) -> None:
    tabs = [b for b in studio.blocks.values() if isinstance(b, gr.Tab)]
    assert len(tabs) == 7 and all(isinstance(tab.label, I18nData) for tab in tabs)
    assert [catalog("zh")[tab.label.key] for tab in tabs] == ["数据集", "模型", "训练", "运行", "导出", "评估", "对话"]
    switch = next(b for b in studio.blocks.values() if getattr(b, "elem_id", None) == "lang-switch")
    assert [c[1] for c in switch.choices] == ["en", "zh"] and [c[0] for c in switch.choices] == ["English", "中文"]
    assert studio.i18n_instance is not None and "zh-CN" in studio.i18n_instance.translations_dict


def test_the_page_names_the_chosen_language_to_gradio_before_it_starts() -> None:
    """?lang= or the remembered cookie puts navigator.language in that language at the top of <head> (Gradio
    reads it once, at start, for its own strings); a page asked for without a language is left alone."""
    import asyncio

    from app.i18n.page import PageLanguageMiddleware, chosen_language

    assert chosen_language(b"lang=zh", "") == "zh" and chosen_language(b"", "tunesmith_lang=zh; x=1") == "zh"
    assert chosen_language(b"lang=en", "tunesmith_lang=zh") == "en" and chosen_language(b"", "") is None
    assert chosen_language(b"", 'bad"cookie') is None

    page = b"<!doctype html><html><head><title>t</title></head><body></body></html>"

    async def studio(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(page)).encode())]})
        await send({"type": "http.response.body", "body": page})

    def get(path: str, query: bytes) -> tuple[dict, bytes]:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
        asyncio.run(PageLanguageMiddleware(studio)(scope, None, send))
        return sent[0], b"".join(m.get("body", b"") for m in sent[1:])

    start, body = get("/", b"lang=zh")
    assert body.startswith(b"<!doctype html><html><head><script>") and b'"zh-CN"' in body
    assert dict(start["headers"])[b"content-length"] == str(len(body)).encode()
    assert get("/", b"")[1] == page and get("/gradio_api/info", b"lang=zh")[1] == page


# Gradio 6's own catalog sections: our catalogs are merged into the same dictionaries, so a key of ours in one of
# them would replace Gradio's text (``common.error`` once turned Gradio's error toasts into our template).
GRADIO_SECTIONS = {"annotated_image", "audio", "blocks", "checkbox", "code", "color_picker", "common", "dataframe",
                   "dropdown", "errors", "file", "highlighted_text", "image", "label", "login", "number", "plot",
                   "radio", "slider", "upload_text", "video", "chatbot", "image_editor", "3D_model"}


def test_our_keys_stay_out_of_gradios_own_sections() -> None:
    clashes = [k for k in LANGUAGES["en"].messages if k.split(".")[0] in GRADIO_SECTIONS and k != "common.complete"]
    assert not clashes, clashes
