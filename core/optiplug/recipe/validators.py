"""attrs validators whose messages say what is accepted (the converter adds the path)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection
from typing import Any

import attrs

from optiplug.errors import ConfigError

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check(test: Callable[[Any], bool], expected: str) -> Validator:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not test(value):
            raise ConfigError(f"must be {expected}, got {value!r}", attribute.name)

    return validate


def positive() -> Validator:
    """The value must be > 0."""
    return _check(lambda v: v > 0, "> 0")


def non_negative() -> Validator:
    """The value must be >= 0."""
    return _check(lambda v: v >= 0, ">= 0")


def in_range(low: float, high: float, *, high_open: bool = False) -> Validator:
    """The value must lie in [low, high] (or [low, high) when ``high_open``)."""
    if high_open:
        return _check(lambda v: low <= v < high, f"in [{low}, {high})")
    return _check(lambda v: low <= v <= high, f"in [{low}, {high}]")


def one_of(choices: Collection[str]) -> Validator:
    """The value must be one of ``choices``."""
    from optiplug.errors import did_you_mean

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            hint = did_you_mean(str(value), choices)
            raise ConfigError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}", attribute.name)

    return validate


def finite_list(*, min_length: int = 0) -> Validator:
    """A list of finite numbers with at least ``min_length`` items."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if len(value) < min_length:
            raise ConfigError(f"needs at least {min_length} item(s), got {list(value)!r}", attribute.name)
        for i, item in enumerate(value):
            if not math.isfinite(item):
                raise ConfigError(f"must be finite, got {item!r}", f"{attribute.name}[{i}]")

    return validate


def increasing(*, strict: bool = True) -> Validator:
    """A list whose items increase (strictly unless ``strict`` is False)."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for a, b in itertools.pairwise(value):
            if b < a or (strict and b == a):
                word = "strictly increasing" if strict else "non-decreasing"
                raise ConfigError(f"must be {word}, got {list(value)!r}", attribute.name)

    return validate


def help_field(help: str, **kwargs: Any) -> Any:
    """An attrs field that carries its help text (shown by ``optiplug schema`` and the docs)."""
    metadata = dict(kwargs.pop("metadata", {}))
    metadata["help"] = help
    return attrs.field(metadata=metadata, **kwargs)
