"""Run housekeeping: a run's name, tags and notes (:class:`JobInfoPatch`, bounded), the Runs list filter
(:func:`matches`) and removing a run's directory (:func:`move_aside` first, so a failure leaves the run
whole, never half-deleted). No torch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.errors import Conflict
from backend.jobs.store import JobRow

TAG_PATTERN = r"^[\w][\w .:+\-/]*$"
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=TAG_PATTERN)]
MAX_TAGS = 20
MAX_NOTES = 10_000


class JobInfoPatch(BaseModel):
    """What PATCH /jobs/{id} may change; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)] | None = Field(
        None, description="Display name of the run.")
    tags: list[Tag] | None = Field(
        None, max_length=MAX_TAGS, description=f"Labels to filter runs by (at most {MAX_TAGS}, each 1-40 letters, "
        "digits, spaces or . : + - / _, starting with a letter, digit or _); replaces the run's tags; duplicates "
        "are kept once.")
    notes: str | None = Field(None, max_length=MAX_NOTES, description="Free-form notes on the run ('' clears them).")

    @field_validator("tags")
    @classmethod
    def _unique(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else list(dict.fromkeys(tags))

    def changes(self) -> dict:
        return {key: value for key, value in self.model_dump(exclude_unset=True).items() if value is not None}


def matches(job: JobRow, tag: str | None, query: str | None) -> bool:
    """``tag``: the run carries it (exactly, ignoring case); ``query``: the text appears (ignoring case) in its id,
    name, notes, tags or base model."""
    if tag and tag.strip().lower() not in {t.lower() for t in job.tags}:
        return False
    if query:
        haystack = " ".join([job.id, job.name, job.notes, *job.tags, str(job.config.get("base_model", ""))]).lower()
        return query.strip().lower() in haystack
    return True


class RunDirOutside(Conflict):
    """A run whose directory is not inside the studio's runs folder: the studio does not delete it."""


def move_aside(runs_dir: Path, run_dir: Path) -> Path | None:
    """Rename a run directory to a hidden name inside the runs folder (atomic: a failure raises with nothing lost)
    and return that name, for :func:`shutil.rmtree` once the run's row is gone; None when the directory is
    already gone."""
    runs_dir, run_dir = runs_dir.resolve(), run_dir.resolve()
    if run_dir.parent != runs_dir:
        raise RunDirOutside(f"run directory {run_dir} is not inside the studio's runs folder {runs_dir}; the studio "
                            "only deletes what it created", hint="delete that folder yourself")
    if not run_dir.exists():
        return None
    doomed = runs_dir / f".deleting-{run_dir.name}"
    shutil.rmtree(doomed, ignore_errors=True)
    run_dir.rename(doomed)
    return doomed
