"""progress.json of a running evaluation: phases known up front, rows done of total, the fraction of the whole."""

import json

from backend.engine.eval_progress import PROGRESS_FILE, ProgressFile


def read(folder):
    return json.loads((folder / PROGRESS_FILE).read_text())


def test_the_fraction_moves_through_the_phases(tmp_path):
    progress = ProgressFile(tmp_path, ["run:loss", "run:predictions", "base:loss", "base:predictions"])
    tick = progress.phase("run:loss")
    assert read(tmp_path) == {"phase": "run:loss", "phase_index": 0, "phases": 4, "done": 0, "total": 1,
                              "fraction": 0.0}
    tick(4, 4)  # a phase's end is always written
    assert read(tmp_path)["fraction"] == 0.25
    tick = progress.phase("run:predictions")
    progress._last = 0.0  # as if half a second had passed
    tick(5, 10)
    assert (read(tmp_path)["done"], read(tmp_path)["fraction"]) == (5, 0.375)
    tick(6, 10)  # within half a second of the last write: not written
    assert read(tmp_path)["done"] == 5
    progress.phase("base:predictions")(10, 10)
    assert read(tmp_path)["fraction"] == 1.0


def test_without_a_folder_nothing_is_written(tmp_path):
    tick = ProgressFile(None, ["run:pairs"]).phase("run:pairs")
    tick(1, 1)
    assert list(tmp_path.iterdir()) == []
