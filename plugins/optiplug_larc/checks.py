"""Option checks shared by LARC and the LARS optimizers: ConfigErrors that quote the value."""

from __future__ import annotations

import math
from typing import Any

import torch

from optiplug import ConfigError


def require_number(value: Any, path: str, *, positive: bool = False) -> None:
    """Refuse anything but a finite number >= 0 (> 0 with ``positive``); tensors are not checked."""
    if isinstance(value, torch.Tensor):
        return
    expected = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"must be a finite number {expected}, got {value!r}", path)
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"must be {expected}, got {value!r}", path)


def require_bool(value: Any, path: str) -> None:
    """Refuse anything but True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}", path)
