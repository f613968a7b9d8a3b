"""SQLite index of jobs. The run directory stays the source of truth for a run's outputs."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from backend.config.distributed import DistributedConfig
from backend.config.rundir import RunDir

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
    config_json  TEXT NOT NULL,
    run_dir      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    pid          INTEGER,
    gpus         TEXT NOT NULL DEFAULT '[]',
    error        TEXT,
    hint         TEXT,
    output       TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    tags         TEXT NOT NULL DEFAULT '[]',
    notes        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
"""
# columns added after the first release: a database from before gets them on open
_ADDED_COLUMNS = {"tags": "TEXT NOT NULL DEFAULT '[]'", "notes": "TEXT NOT NULL DEFAULT ''"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class JobRow:
    id: str
    name: str
    state: str
    config: dict
    run_dir: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    pid: int | None = None
    gpus: list[int] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None
    output: str | None = None
    cancel_requested: bool = False
    tags: list[str] = field(default_factory=list)  # the user's labels, for filtering (PATCH /jobs/{id})
    notes: str = ""

    @property
    def run(self) -> RunDir:
        """The run directory: the source of truth for the run (its config is run.yaml; ``config`` is an index copy)."""
        return RunDir(self.run_dir)

    @property
    def method(self) -> str | None:
        """The training method's name (lora, qlora, full, freeze) as indexed at submit."""
        method = self.config.get("method")
        return method.get("name") if isinstance(method, dict) else None

    @property
    def distributed(self) -> DistributedConfig:
        """How the job is spread over processes and GPUs (what the scheduler needs before it starts)."""
        return DistributedConfig.model_validate(self.config.get("distributed") or {})

    @property
    def dataset_refs(self) -> set[str]:
        """Ids (or names) of the training and validation datasets the job reads."""
        entries = [*self.config.get("datasets", []), *self.config.get("val_datasets", [])]
        return {entry["id"] if isinstance(entry, dict) else entry for entry in entries}

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> JobRow:
        data = dict(row)
        data["config"] = json.loads(data.pop("config_json"))
        data["gpus"] = json.loads(data["gpus"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["tags"] = json.loads(data.get("tags") or "[]")
        data["notes"] = data.get("notes") or ""
        return cls(**data)


class JobStore:
    """Thread-safe access to the ``jobs`` table (one connection per operation, WAL mode)."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            present = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
            for name, decl in _ADDED_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                yield conn
        finally:
            conn.close()

    def insert(self, job: JobRow) -> None:
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT INTO jobs (id, name, state, config_json, run_dir, created_at, gpus) VALUES (?,?,?,?,?,?,?)",
                (job.id, job.name, job.state, json.dumps(job.config), job.run_dir, job.created_at, json.dumps(job.gpus)),
            )

    def get(self, job_id: str) -> JobRow | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRow.from_sql(row) if row else None

    def list(self, states: tuple[str, ...] | None = None) -> list[JobRow]:
        query, args = "SELECT * FROM jobs", ()
        if states:
            query += f" WHERE state IN ({','.join('?' * len(states))})"
            args = states
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY created_at DESC, rowid DESC", args).fetchall()
        return [JobRow.from_sql(r) for r in rows]

    def next_queued(self) -> JobRow | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE state = 'queued' AND cancel_requested = 0 ORDER BY created_at, rowid LIMIT 1"
            ).fetchone()
        return JobRow.from_sql(row) if row else None

    def update(self, job_id: str, *, expect_state: tuple[str, ...] | None = None, **fields) -> bool:
        """Update columns; with ``expect_state`` only if the job is currently in one of those states."""
        for key in ("gpus", "tags"):
            if key in fields:
                fields[key] = json.dumps(fields[key])
        if "cancel_requested" in fields:
            fields["cancel_requested"] = int(fields["cancel_requested"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        query, args = f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id]
        if expect_state:
            query += f" AND state IN ({','.join('?' * len(expect_state))})"
            args += list(expect_state)
        with self._lock, self._connect() as conn:
            return conn.execute(query, args).rowcount == 1

    def delete(self, job_id: str, *, expect_state: tuple[str, ...] | None = None) -> bool:
        """Delete the row; with ``expect_state`` only if the job is currently in one of those states."""
        query, args = "DELETE FROM jobs WHERE id = ?", [job_id]
        if expect_state:
            query += f" AND state IN ({','.join('?' * len(expect_state))})"
            args += list(expect_state)
        with self._lock, self._connect() as conn:
            return conn.execute(query, args).rowcount == 1
