"""The studio's version: pyproject.toml's ``version``, read through the installed package's metadata (one place)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def studio_version() -> str:
    """``tunesmith``'s installed version; ``0.0.0+local`` when run from a checkout that was never installed."""
    try:
        return version("tunesmith")
    except PackageNotFoundError:
        return "0.0.0+local"
