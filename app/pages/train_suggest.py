"""The suggested settings for the Train form's base model (``GET /models/suggest``): the line under "Base model"
and the config "Start from… ✨ Suggested settings" fills the form with."""

from __future__ import annotations

import re
from typing import Any

from app.client import ApiError, TunesmithClient
from app.format import error_markdown
from app.i18n import t

# The API's suggestion notes and device are English sentences of a few fixed shapes; these say them in the UI's
# language (a note of another shape is shown as the API wrote it).
_SAID_AGAIN = (
    (re.compile(r"(?P<params>\S+) parameters \((?P<layers>\d+) layers, hidden size (?P<hidden>\d+)\)\."),
     "config.note_size"),
    (re.compile(r"No GPU here: LoRA on the CPU \((?P<cores>\d+) cores\), bf16 where the CPU supports it\."),
     "config.note_cpu"),
    (re.compile(r"CPU \((?P<cores>\d+) cores\)"), "config.device_cpu"),
    (re.compile(r"(?P<count>\d+) × (?P<gpu>.+) \((?P<free>\d+ GiB) free\)"), "config.device_gpus"),
)


def in_language(text: str, lang: str) -> str:
    """One of the suggestion's notes (or its device) in ``lang`` when it has a known shape, else as it is."""
    for pattern, key in _SAID_AGAIN:
        if match := pattern.fullmatch(text.strip()):
            return t(key, lang, **match.groupdict())
    return text


def suggestion_summary(suggestion: dict[str, Any], lang: str) -> str:
    """One line: size, device and the main suggested values."""
    settings = suggestion.get("settings") or {}
    method = settings.get("method") or {}
    name = str(method.get("name", "?"))
    return t(
        "config.suggestion_summary",
        lang,
        method={"qlora": "QLoRA 4-bit"}.get(
            name, t(f"method.{name}", lang) if name in ("lora", "qlora", "full", "freeze") else name
        ),
        rank=method.get("rank"),
        lr=f"{settings.get('learning_rate'):g}",
        batch=settings.get("per_device_batch_size"),
        accum=settings.get("gradient_accumulation_steps"),
        cutoff=settings.get("cutoff_len"),
        device=in_language(str(suggestion.get("device") or ""), lang),
    )


def model_hint(client: TunesmithClient, model: str | None, lang: str) -> str:
    """The line under "Base model": its size and what would suit it here (or nothing when it cannot be sized)."""
    if not model:
        return ""
    try:
        suggestion = client.suggest_settings(model)
    except ApiError:
        return ""
    return t(
        "config.model_hint",
        lang,
        note=in_language((suggestion.get("notes") or [""])[0], lang),
        summary=suggestion_summary(suggestion, lang),
    )


def suggested_config(client: TunesmithClient, current: dict[str, Any], lang: str) -> tuple[dict[str, Any] | None, str]:
    """The form's config with the suggested settings for its base model laid over it, and where it comes from."""
    model = current.get("base_model")
    if not model:
        return None, t("config.pick_model_first", lang)
    try:
        suggestion = client.suggest_settings(model)
    except ApiError as exc:
        return None, t("config.no_suggestion", lang) + "\n\n" + error_markdown(exc, lang)
    notes = " ".join(in_language(note, lang) for note in suggestion.get("notes") or [])
    return (
        {**current, **(suggestion.get("settings") or {})},
        t("config.from_suggestion", lang, model=suggestion.get("model", model), notes=notes),
    )
