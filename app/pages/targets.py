"""What Chat and Evaluate talk to: a base model or a succeeded run, as one dropdown value ``model:<id>`` /
``job:<id>`` (one encoding for both pages, and for the Runs page's "Chat with it" / "Evaluate it" shortcuts)."""

from __future__ import annotations

from app.client import Job, Model
from app.i18n import DEFAULT, t

KINDS = ("job", "model")


def target_value(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def parse_target(value: str | None) -> tuple[str, str] | None:
    """``("job", id)`` or ``("model", id)`` from a dropdown value, None when nothing is picked."""
    if not value or ":" not in value:
        return None
    kind, ident = value.split(":", 1)
    return (kind, ident) if kind in KINDS and ident else None


def api_reference(picked: tuple[str, str]) -> dict[str, str]:
    """The keyword the API's chat/evaluate calls take for a target: ``{"job_id": id}`` or ``{"model": id}``."""
    kind, ident = picked
    return {"job_id": ident} if kind == "job" else {"model": ident}


def run_label(job: Job, lang: str = DEFAULT) -> str:
    """``Run · name · id · method → what it produced``."""
    config = job.get("config") or {}
    method = config.get("method")
    method = method.get("name") if isinstance(method, dict) else method
    output = "merged" if job.get("has_merged") else job.get("output") or "?"
    return t("targets.run", lang, name=job.get("name") or job["id"], id=job["id"], method=method or "?",
             output=output)


def target_choices(models: list[Model], jobs: list[Job], lang: str = DEFAULT,
                   runs_first: bool = False) -> list[tuple[str, str]]:
    """Dropdown ``(label, value)`` pairs: base models and succeeded runs (newest first)."""
    done = [j for j in jobs if j.get("state") == "succeeded" and j.get("id")]
    done.sort(key=lambda j: str(j.get("finished_at") or j.get("created_at") or ""), reverse=True)
    runs = [(run_label(j, lang), target_value("job", j["id"])) for j in done]
    bases = [(t("targets.base", lang, id=m["id"]), target_value("model", m["id"])) for m in models if m.get("id")]
    return runs + bases if runs_first else bases + runs
