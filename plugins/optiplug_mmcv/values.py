"""Checks of plain config values, with MMCV-style paths in the errors."""

from __future__ import annotations

from typing import Any

from optiplug import ConfigError
from optiplug.recipe import numbers


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool) within float32's range (whole numbers below 2**53)."""
    return numbers.is_number(value)


def is_whole(value: Any) -> bool:
    """An int (not a bool) below 2**53 in magnitude."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= numbers.INT_LIMIT


def whole_number(value: Any, path: str) -> int:
    """``value`` if it is a whole number > 0 (below 2**53), else a ConfigError at ``path``."""
    if not is_whole(value) or value <= 0:
        raise ConfigError(f"must be a whole number > 0 (below 2**53), got {value!r}", path)
    return value
