"""What counts as a usable number in a config.

Hyper-parameters end up multiplied into float32 tensors and counts into int64 ones, so
a number must be finite, below float32's largest value (3.4e38), and a whole number
must be below 2**53 (exact in float64). Anything else is refused at the config, not
left to fail (or overflow silently) deep inside a training step.
"""

from __future__ import annotations

import math
from typing import Any

FLOAT_LIMIT = 3.0e38
INT_LIMIT = 2**53


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool) within the limits."""
    return number_problem(value) is None


def number_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable number, or None if it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {value!r}"
    if isinstance(value, int):
        return None if abs(value) <= INT_LIMIT else f"expected a number below 2**53, got {value!r}"
    if not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    if abs(value) > FLOAT_LIMIT:
        return f"expected a number of magnitude below 3e38 (float32's range), got {value!r}"
    return None


def parse_float(value: Any) -> tuple[float | None, str | None]:
    """A float from a number or a numeric string (YAML reads ``1e-08`` as text), or the problem."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, f"expected a number, got {value!r}"
    problem = number_problem(value)
    return (None, problem) if problem else (float(value), None)


def is_count(value: Any, minimum: int = 1) -> bool:
    """A whole number (an int, not a bool) of at least ``minimum`` and below 2**53."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= INT_LIMIT


def count_problem(value: Any, minimum: int = 1) -> str | None:
    """Why ``value`` is not a whole number >= ``minimum``, or None if it is one.

    >>> count_problem(0)
    'must be a whole number > 0, got 0'
    """
    if is_count(value, minimum):
        return None
    bound = "> 0" if minimum == 1 else f">= {minimum}"
    too_big = isinstance(value, int) and not isinstance(value, bool) and value > INT_LIMIT
    return f"must be a whole number {bound}{' and below 2**53' if too_big else ''}, got {value!r}"
