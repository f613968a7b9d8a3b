"""A home folder the studio cannot write (a read-only mount, another user's folder, a disk remounted read-only
after errors): serve what is there instead of crashing.

``home_write_problem`` probes the folder with a real file (permission bits say nothing for root or for a
read-only mount). ``read_only_settings`` points the database at a snapshot copy in a temp folder, because SQLite
cannot even read a WAL database in a folder where it may not create its ``-shm`` file; datasets, runs and
models are read in place. The security guard then answers every API write with 503 and this reason.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from backend.settings import Settings


def home_write_problem(settings: Settings) -> str | None:
    """Why nothing can be written under ``settings.home`` (a sentence), or None when it is writable."""
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=home)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        return f"the state folder {home} cannot be written ({err.strerror or err})"
    return None


def read_only_settings(settings: Settings, reason: str) -> Settings:
    """``settings`` for serving a home that cannot be written: the database read from a snapshot copy."""
    snapshot = Path(tempfile.mkdtemp(prefix="tunesmith-readonly-db-"))
    atexit.register(shutil.rmtree, snapshot, True)
    source = settings.home / "tunesmith.db"
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").is_file():
            shutil.copyfile(f"{source}{suffix}", snapshot / f"tunesmith.db{suffix}")
    return dataclasses.replace(settings, read_only_reason=reason, db_file=snapshot / "tunesmith.db")
