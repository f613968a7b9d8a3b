"""What a dataset name and a dataset id look like. Its own module so that the registry and the upload path
(``uploads.py``, which the registry imports) both check names without importing each other."""

from __future__ import annotations

import re

from backend.datasets.errors import InvalidDatasetName

NAME_PATTERN = re.compile(r"^\w[\w .-]{0,63}$")
ID_PATTERN = re.compile(r"^ds_[0-9a-f]{10}$")


def check_dataset_name(name: str) -> str:
    """The name, stripped, or InvalidDatasetName saying what a valid name looks like."""
    name = name.strip()
    if not NAME_PATTERN.match(name) or ID_PATTERN.match(name):
        raise InvalidDatasetName(
            f"'{name}' is not a valid dataset name: use 1-64 letters, digits, spaces, '.', '_' or '-', starting "
            "with a letter or digit (and not of the form ds_ + 10 hex digits, which is how ids look)."
        )
    return name
