"""Whole numbers in MMCV configs (epochs, iterations, intervals, steps), with MMCV-style paths in the errors."""

from __future__ import annotations

from typing import Any

from optiplug.plugin import INT_LIMIT, ConfigError


def is_whole(value: Any) -> bool:
    """An int (not a bool) below 2**53 in magnitude."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= INT_LIMIT


def whole_number(value: Any, path: str) -> int:
    """``value`` if it is a whole number > 0 (below 2**53), else a ConfigError at ``path``."""
    if not is_whole(value) or value <= 0:
        raise ConfigError(f"must be a whole number > 0 (below 2**53), got {value!r}", path)
    return value
