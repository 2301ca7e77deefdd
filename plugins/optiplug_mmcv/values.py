"""Checks of plain config values, with MMCV-style paths in the errors."""

from __future__ import annotations

import math
from typing import Any

from optiplug import ConfigError


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole_number(value: Any, path: str) -> int:
    """``value`` if it is a whole number > 0, else a ConfigError at ``path``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"must be a whole number > 0, got {value!r}", path)
    return value
