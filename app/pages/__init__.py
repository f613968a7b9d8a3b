"""The studio's tabs. Each module has a ``build(client, ...)`` that lays out its components inside the
current ``gr.Blocks`` and returns a small page object with what ``app.main`` needs to wire tabs together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Refresh:
    """A function that re-reads a page's lists from the API, with its Gradio inputs and outputs."""

    fn: Callable[..., Any]
    inputs: Sequence[Any] = field(default_factory=list)
    outputs: Sequence[Any] = field(default_factory=list)

    def on(self, trigger: Callable[..., Any]) -> Any:
        """Run this refresh when ``trigger`` fires, e.g. ``page.refresh.on(tab.select)``."""
        return trigger(self.fn, inputs=list(self.inputs), outputs=list(self.outputs), show_progress="hidden")
