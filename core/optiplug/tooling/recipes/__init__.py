"""Recipes shipped with optiplug (package data): ``default.yaml`` is the one ``optiplug run`` uses."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT = "default.yaml"


def recipe_path(name: str = DEFAULT) -> Path:
    """The path of a shipped recipe file."""
    return Path(str(resources.files(__name__) / name))
