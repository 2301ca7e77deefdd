"""The cattrs converter for recipes, and the turning of its errors into ConfigErrors.

Scalars are strict (a bool is not a number, a number is not a name, NaN and inf are
refused); lists and mappings must be lists and mappings; unknown keys are refused with
a did-you-mean. Plugin-selected configs (schedules, rules, wrappers) are structured by
hooks that look the name up in the registry.
"""

from __future__ import annotations

import collections.abc as cabc
import math
import typing
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from optiplug.errors import ConfigError, did_you_mean, join_path
from optiplug.recipe.numbers import INT_LIMIT, parse_float

NormType = typing.NewType("NormType", float)
"""A p-norm's p: a positive number or ``inf``."""

T = TypeVar("T")


def _float(value: Any, _type: Any) -> float:
    number, problem = parse_float(value)
    if number is None:
        raise ConfigError(problem or f"expected a number, got {value!r}")
    return number


def _int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a whole number, got {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ConfigError(f"expected a whole number, got {value!r}")
    if abs(value) > INT_LIMIT:
        raise ConfigError(f"expected a whole number below 2**53, got {value!r}")
    return int(value)


def _norm_type(value: Any, _type: Any) -> float:
    if value in ("inf", "Inf", "INF") or value == math.inf:
        return math.inf
    return _float(value, float)


def _bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def _str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}")
    return value


def _is_sequence(type_: Any) -> bool:
    return typing.get_origin(type_) in (list, tuple, cabc.Sequence)


def _is_mapping(type_: Any) -> bool:
    return typing.get_origin(type_) in (dict, cabc.Mapping)


def make_converter() -> cattrs.Converter:
    """A strict converter with the scalar, list and mapping checks (no plugin hooks)."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(str, _str)
    conv.register_structure_hook(NormType, _norm_type)

    def sequence_factory(type_: Any) -> Any:
        args = typing.get_args(type_)
        item_type = args[0] if args else Any
        is_tuple = typing.get_origin(type_) is tuple

        def structure(value: Any, _t: Any) -> Any:
            if isinstance(value, str | bytes) or isinstance(value, Mapping) or not hasattr(value, "__iter__"):
                raise ConfigError(f"expected a list, got {value!r}")
            items: list[Any] = []
            problems: list[tuple[str, str]] = []
            for i, item in enumerate(value):
                try:
                    items.append(conv.structure(item, item_type))
                except Exception as exc:  # noqa: BLE001 - collected and re-raised as one ConfigError
                    problems.extend((join_path(i, p), m) for p, m in explain(exc))
            if problems:
                raise ConfigError("", items=problems)
            return tuple(items) if is_tuple else items

        return structure

    def mapping_factory(type_: Any) -> Any:
        args = typing.get_args(type_)
        key_type, value_type = args if len(args) == 2 else (Any, Any)

        def structure(value: Any, _t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise ConfigError(f"expected a mapping, got {value!r}")
            out: dict[Any, Any] = {}
            problems: list[tuple[str, str]] = []
            for key, item in value.items():
                try:
                    out[conv.structure(key, key_type)] = conv.structure(item, value_type)
                except Exception as exc:  # noqa: BLE001 - collected and re-raised as one ConfigError
                    problems.extend((join_path(str(key), p), m) for p, m in explain(exc))
            if problems:
                raise ConfigError("", items=problems)
            return out

        return structure

    conv.register_structure_hook_factory(_is_sequence, sequence_factory)
    conv.register_structure_hook_factory(_is_mapping, mapping_factory)
    return conv


def explain(exc: BaseException, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(dotted path, message)`` in a structuring error, innermost first."""
    if isinstance(exc, ConfigError):
        for sub, message in exc.items:
            yield join_path(path, sub), message
    elif isinstance(exc, ForbiddenExtraKeysError):
        accepted = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else []
        for key in sorted(exc.extra_fields):
            hint = did_you_mean(key, accepted)
            yield join_path(path, key), f"unknown key{hint}; accepted: {', '.join(accepted) or 'none'}"
    elif isinstance(exc, BaseValidationError):
        for inner in exc.exceptions:
            yield from explain(inner, join_path(path, _note_path(inner)))
    elif isinstance(exc, KeyError) and _note_path(exc):
        yield path, "required key missing"
    else:
        yield path, f"invalid value ({type(exc).__name__}: {exc})"


def _note_path(exc: BaseException) -> str:
    for note in getattr(exc, "__notes__", ()):
        if hasattr(note, "name"):
            return str(note.name)
        if hasattr(note, "index"):
            index = note.index
            return f"[{index}]" if isinstance(index, int) else str(index)
    return ""


def structure(converter: cattrs.Converter, data: Any, cls: type[T], path: str = "") -> T:
    """Structure ``data`` into ``cls``; any problem becomes one ConfigError listing them all."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - every structuring failure is a config problem
        items = list(explain(exc, path)) or [(path, str(exc))]
        raise ConfigError("", items=items) from None
