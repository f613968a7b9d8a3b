"""How far an evaluation is: ``progress.json`` in its folder, read by the studio while the engine works.

An evaluation is a fixed list of phases known up front (the run's loss, its predictions, then the base model's
loss and predictions; a reward model: its pairs, then the base's). Each phase reports rows done of its total;
``fraction`` = (phases finished + done/total of the current one) / phases. Written atomically, at most twice a
second (and always at a phase's end), so readers never see half a file and the engine spends nothing on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from backend.fsio import atomic_write_json

PROGRESS_FILE = "progress.json"
MIN_INTERVAL_S = 0.5

Tick = Callable[[int, int], None]


class ProgressFile:
    def __init__(self, out_dir: str | Path | None, phases: list[str]):
        self.path = Path(out_dir) / PROGRESS_FILE if out_dir is not None else None
        self.phases = phases
        self._last = 0.0

    def phase(self, name: str) -> Tick:
        """The ``tick(done, total)`` callback of one phase (one of ``phases``); the phase's start is written."""
        index = self.phases.index(name)
        self._write(name, index, 0, 1, force=True)
        return lambda done, total: self._write(name, index, done, total)

    def _write(self, name: str, index: int, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and done < total and now - self._last < MIN_INTERVAL_S):
            return
        self._last = now
        share = min(1.0, done / total) if total else 1.0
        atomic_write_json(self.path, {"phase": name, "phase_index": index, "phases": len(self.phases),
                                      "done": done, "total": total,
                                      "fraction": round((index + share) / len(self.phases), 4)})


def no_tick(done: int, total: int) -> None:
    """For callers that do not report progress."""
