"""MMCV's annealing and power arithmetic, evaluated with Python floats as MMCV's code evaluates it.

MMCV computes ``cos(pi * f)`` and ``x ** y`` on Python floats (libm). torch's vectorized
kernels may differ in the last bit, so these helpers map each distinct input through
Python's own functions and scatter the results back: bit-identical to MMCV, and still
one call per block of updates (a block holds at most a few thousand distinct values).
Everything else (``+ - * /``) is IEEE-exact in float64 tensors already.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def map_unique(fn: Callable[[float], float], x: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to every element of ``x`` (float64), once per distinct value."""
    unique, inverse = torch.unique(x, return_inverse=True)
    table = torch.tensor([fn(v) for v in unique.tolist()], dtype=torch.float64)
    return table[inverse].reshape(x.shape)


def cos_pi(factor: torch.Tensor) -> torch.Tensor:
    """``math.cos(math.pi * f)`` for every ``f`` (MMCV's ``cos(pi * factor)``)."""
    return map_unique(lambda f: math.cos(math.pi * f), factor)


def real_pow(base: float, exponent: float) -> float:
    """Python's ``base ** exponent``; NaN where Python would give a complex number."""
    if base < 0 and not float(exponent).is_integer():
        return math.nan
    try:
        return float(base**exponent)
    except (OverflowError, ZeroDivisionError):
        return math.inf


def pow_of(base: float, exponents: torch.Tensor) -> torch.Tensor:
    """``base ** e`` for every exponent ``e`` (MMCV's ``gamma ** progress``)."""
    return map_unique(lambda e: real_pow(base, e), exponents)


def pow_to(bases: torch.Tensor, exponent: float) -> torch.Tensor:
    """``b ** exponent`` for every base ``b`` (MMCV's ``(1 - p / P) ** power``)."""
    return map_unique(lambda b: real_pow(b, exponent), bases)


def annealing_cos(
    start: torch.Tensor | float, end: torch.Tensor | float, factor: torch.Tensor, weight: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """MMCV's ``annealing_cos``: ``end + 0.5 * weight * (start - end) * (cos(pi * factor) + 1)``.

    The operation order is MMCV's (left to right), so the result is bit-identical.
    """
    cos_out = cos_pi(factor) + 1
    return end + 0.5 * weight * (start - end) * cos_out


def annealing_linear(start: torch.Tensor | float, end: torch.Tensor | float, factor: torch.Tensor) -> torch.Tensor:
    """MMCV's ``annealing_linear``: ``start + (end - start) * factor``."""
    return start + (end - start) * factor


ANNEALERS: dict[str, Callable[..., torch.Tensor]] = {"cos": annealing_cos, "linear": annealing_linear}
