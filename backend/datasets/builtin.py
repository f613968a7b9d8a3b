"""Where the built-in demo datasets live: the repository's ``datasets/`` folder, registered again at every start.

Its own module so that the app factory, the datasets routes and the CLI read one constant without importing
each other.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_DATASETS = Path(__file__).resolve().parents[2] / "datasets"
