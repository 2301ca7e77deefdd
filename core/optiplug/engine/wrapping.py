"""The optimizers a built optimizer is made of: itself, then the one each wrapper holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def optimizer_chain(optimizer: Any) -> Iterator[Any]:
    """``optimizer``, then the optimizer it wraps (``.optimizer``, else ``.optim``: LARC, ZeRO, ...), and so on.

    Each object is given once, so a wrapper that points back at itself ends the chain.
    """
    seen: set[int] = set()
    while optimizer is not None and id(optimizer) not in seen:
        seen.add(id(optimizer))
        yield optimizer
        optimizer = getattr(optimizer, "optimizer", None) or getattr(optimizer, "optim", None)
