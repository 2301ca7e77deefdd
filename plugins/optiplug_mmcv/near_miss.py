"""A config that is nearly an MMCV config: ``optimiser=``, ``typ=``, or a ``_base_`` file given alone."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

KEY = "optimizer"


def near_miss(data: Mapping[str, Any], source: str | None) -> tuple[str, str] | None:
    """``(message, path)`` when ``data`` is nearly an MMCV config, else None."""
    for key in data:
        close = isinstance(key, str) and key != KEY and key.lower() != "optimizers"
        if close and difflib.get_close_matches(key, [KEY], n=1, cutoff=0.75):
            hint = "the optimizer is optimizer (MMCV: optimizer=dict(type=...); canonical: optimizer: {name: ...})"
            return f"no such key (did you mean {KEY!r}? {hint})", key
    optimizer = data.get(KEY)
    if isinstance(optimizer, Mapping) and "name" not in optimizer and "type" not in optimizer:
        typo = difflib.get_close_matches("type", [str(k) for k in optimizer], n=1, cutoff=0.6)
        if typo:
            message = (
                f"an MMCV optimizer names its class with type=, not {typo[0]}= (did you mean 'type'?); "
                "a canonical recipe with name:"
            )
            return message, f"optimizer.{typo[0]}"
    if source is not None and source.endswith(".py") and KEY not in data:
        message = (
            f"{source}: an MMCV .py config sets optimizer=dict(type=...), and this file (with its _base_ files) "
            "sets none: is it a _base_ model / dataset / runtime file? Point optiplug at the config that trains"
        )
        return message, ""
    return None
