"""A config that is nearly a VISSL config: its optimizer block under a misspelt key."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

BLOCK = "OPTIMIZER"


def near_miss(data: Mapping[str, Any], source: str | None) -> tuple[str, str] | None:
    """``(message, path)`` for a top-level key close to ``OPTIMIZER`` (``OPTIMISER``), else None."""
    hint = f"VISSL's optimizer block is {BLOCK} (under config: in a VISSL file)"
    for key in data:
        near = isinstance(key, str) and key != BLOCK and key.lower() != "optimizers"
        if near and difflib.get_close_matches(key, [BLOCK], n=1, cutoff=0.75):
            return f"no such key (did you mean {BLOCK!r}? {hint})", key
    return None
