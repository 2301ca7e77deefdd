"""Reading single VISSL values with errors that name the VISSL path.

VISSL reads its YAML through OmegaConf, which takes ``1e-08`` for a number; PyYAML reads it
as a string. Numbers written that way are accepted here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from optiplug import ConfigError
from optiplug.plugin import did_you_mean, join_path


def number(
    value: Any, path: str, *, low: float | None = None, high: float | None = None, high_open: bool = False
) -> float:
    """A finite number (int, float or numeric string) within ``[low, high]`` (``high`` open if asked)."""
    result: float | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            result = float(value)
        except (ValueError, OverflowError):  # not a number; an integer past what a float holds
            result = None
    if result is None or not math.isfinite(result):
        raise ConfigError(f"expected a finite number, got {value!r}", path)
    too_high = high is not None and (result >= high if high_open else result > high)
    if (low is not None and result < low) or too_high:
        raise ConfigError(f"must be {_range(low, high, high_open)}, got {value!r}", path)
    return result


def _range(low: float | None, high: float | None, high_open: bool) -> str:
    if high is None:
        return f">= {low}"
    close = ")" if high_open else "]"
    return f"in [{low}, {high}{close}" if low is not None else f"< {high}" if high_open else f"<= {high}"


WHOLE_LIMIT = 2**53


def whole(value: Any, path: str, *, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` and at most 2**53 (a float like ``90.0`` is accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"expected a whole number, got {value!r}", path)
    if value < minimum:
        raise ConfigError(f"must be >= {minimum}, got {value!r}", path)
    if value > WHOLE_LIMIT:  # past what a float holds exactly: lr scaling would overflow
        raise ConfigError(f"must be a whole number below 2**53, got {value!r}", path)
    return value


def flag(value: Any, path: str) -> bool:
    """A boolean (YAML true/false)."""
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}", path)
    return value


def text(value: Any, path: str, choices: Iterable[str] | None = None) -> str:
    """A string, one of ``choices`` when given."""
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}", path)
    if choices is not None:
        options = list(choices)
        if value not in options:
            raise ConfigError(
                f"must be one of {', '.join(map(repr, options))}, got {value!r}{did_you_mean(value, options)}", path
            )
    return value


def strings(value: Any, path: str) -> list[str]:
    """A list of strings."""
    if not isinstance(value, list | tuple):
        raise ConfigError(f"expected a list of strings, got {value!r}", path)
    return [text(item, join_path(path, i)) for i, item in enumerate(value)]


def section(value: Any, path: str) -> Mapping[str, Any]:
    """A mapping (an empty YAML block, read as null, is an empty mapping)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping, got {value!r}", path)
    return value


def known_keys(
    mapping: Mapping[str, Any], known: Iterable[str], path: str, notes: Mapping[str, str] | None = None
) -> None:
    """Refuse keys outside ``known``; ``notes`` explains keys VISSL has but optiplug refuses."""
    accepted = sorted(set(known))
    for key in mapping:
        if notes and key in notes:
            raise ConfigError(notes[key], join_path(path, str(key)))
        if key not in accepted:
            raise ConfigError(
                f"unknown key{did_you_mean(str(key), accepted)}; accepted here: {', '.join(accepted)}",
                join_path(path, str(key)),
            )
