"""A tokenizer directory's chat template, read and rendered without transformers (the web process has no torch).

Rendering follows transformers' own setup (sandboxed Jinja2 with ``trim_blocks``/``lstrip_blocks``, loop controls,
``raise_exception``, ``tojson``), so for the plain system/user/assistant conversations we render it gives the
text ``tokenizer.apply_chat_template(..., tokenize=False)`` gives; tests/unit/test_modelfile.py checks that
against transformers itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template (Jinja source) with the special tokens it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    adds_bos: bool = False  # the tokenizer itself puts bos_token first (llama.cpp/Ollama then add it too)

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        import jinja2
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str):
            raise jinja2.TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
        env.globals["raise_exception"] = raise_exception
        return env.from_string(self.source).render(
            messages=messages, add_generation_prompt=add_generation_prompt, bos_token=self.bos_token,
            eos_token=self.eos_token)


def _token_text(value) -> str:
    """``"<|im_end|>"`` or ``{"content": "<|im_end|>", ...}`` (older tokenizer_config.json) -> the text."""
    if isinstance(value, dict):
        return str(value.get("content") or "")
    return str(value or "")


def read_chat_template(tokenizer_dir: str | Path) -> ChatTemplate | None:
    """The template saved with a tokenizer (``chat_template.jinja``, else ``chat_template`` in
    tokenizer_config.json), or None when it has none."""
    tokenizer_dir = Path(tokenizer_dir)
    config_path = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    jinja_path = tokenizer_dir / "chat_template.jinja"
    source = jinja_path.read_text(encoding="utf-8") if jinja_path.is_file() else config.get("chat_template")
    if isinstance(source, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {entry.get("name"): entry.get("template") for entry in source if isinstance(entry, dict)}
        source = named.get("default")
    if not isinstance(source, str) or not source.strip():
        return None
    bos = _token_text(config.get("bos_token"))
    return ChatTemplate(source=source, bos_token=bos, eos_token=_token_text(config.get("eos_token")),
                        adds_bos=bool(bos) and _adds_bos(tokenizer_dir, config, bos))


def _adds_bos(tokenizer_dir: Path, config: dict, bos: str) -> bool:
    """Does tokenizing add the BOS token (``add_bos_token``, or a post-processor that inserts it)?"""
    if "add_bos_token" in config:
        return bool(config["add_bos_token"])
    tokenizer_json = tokenizer_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        return False
    post = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("post_processor") or {}
    return bos in json.dumps(post.get("single") or post.get("processors") or "", ensure_ascii=False)
