"""Where the studio keeps its state. Everything is under one home folder (default ./.tunesmith)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_MODEL_ID = "SmolLM2-135M-Instruct"


def _env_count(name: str, default: int | None) -> int | None:
    """A whole number >= 1 from the environment variable ``name`` (unset or empty: ``default``)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"environment variable {name}={raw!r} must be a whole number of 1 or more; "
                         f"unset it or set e.g. {name}=2")
    return int(raw)


def _env_names(name: str) -> tuple[str, ...]:
    """Comma- or space-separated host names from the environment variable ``name``, lower-cased."""
    raw = os.environ.get(name, "").replace(",", " ")
    return tuple(part.strip().lower() for part in raw.split() if part.strip())


@dataclass(frozen=True)
class Settings:
    home: Path
    max_concurrent_jobs: int | None = None  # cap on running jobs of every kind; None = the GPU slots decide
    max_cpu_jobs: int = 1  # CPU-only jobs (no GPU visible, or gpus: []) that run at once
    max_upload_bytes: int = 2 * 1024**3
    max_json_bytes: int = 16 * 1024**2  # any request body that is not a multipart upload
    # The access token (TUNESMITH_TOKEN); None = no authentication (only allowed on loopback, see backend/cli.py).
    token: str | None = field(default=None, repr=False)
    # Names (besides loopback) the studio is reached by: trusted as Host and Origin; "*" = any Host.
    allowed_hosts: tuple[str, ...] = ()
    # Set at startup when the home folder cannot be written (backend/home_access.py): why, and where the
    # read-only snapshot of the database lives. None = a normal, writable home.
    read_only_reason: str | None = None
    db_file: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.db_file or self.home / "tunesmith.db"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def models_dir(self) -> Path:
        return Path(os.environ.get("TUNESMITH_MODELS_DIR") or self.home / "models")

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> Settings:
        root = Path(home or os.environ.get("TUNESMITH_HOME") or ".tunesmith").resolve()
        return cls(
            home=root,
            max_concurrent_jobs=_env_count("TUNESMITH_MAX_JOBS", None),
            max_cpu_jobs=_env_count("TUNESMITH_MAX_CPU_JOBS", 1),
            max_upload_bytes=_env_count("TUNESMITH_MAX_UPLOAD_BYTES", 2 * 1024**3),
            max_json_bytes=_env_count("TUNESMITH_MAX_JSON_BYTES", 16 * 1024**2),
            token=os.environ.get("TUNESMITH_TOKEN", "").strip() or None,
            allowed_hosts=_env_names("TUNESMITH_ALLOWED_HOSTS"),
        )

    def ensure_dirs(self) -> None:
        for path in (self.home, self.runs_dir, self.datasets_dir, self.models_dir):
            path.mkdir(parents=True, exist_ok=True)
