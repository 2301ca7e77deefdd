"""The standard param-rule kinds.

By name (regex, substring), module type, norm layers, biases, number of dimensions,
module path, and ``all``.

Each kind is registered by the core's built-in plugin; a recipe selects it with ``kind``.
"""

from __future__ import annotations

import re

import attrs
from torch import nn

from optiplug.errors import ConfigError
from optiplug.plugin_system.records import ParamInfo, RuleMatcher, RuleSpec
from optiplug.recipe.validators import help_field, non_negative

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


@attrs.frozen
class RegexRule:
    """``kind: regex``: ``re.search`` of ``pattern`` in the parameter's dotted name."""

    pattern: str = help_field("A Python regular expression searched anywhere in the name.")


@attrs.frozen
class NameRule:
    """``kind: name``: the dotted name contains ``contains`` (a plain substring)."""

    contains: str = help_field("Substring of the parameter's dotted name.")


@attrs.frozen
class ModuleTypeRule:
    """``kind: module_type``: the owning module is an instance of one of ``types`` (class names)."""

    types: list[str] = help_field(
        "Class names, matched against the module's classes and their bases (e.g. Embedding, _BatchNorm)."
    )


@attrs.frozen
class ModulePathRule:
    """``kind: module_path``: the owning module's dotted name starts with ``prefix`` and/or contains ``contains``."""

    prefix: str | None = help_field("The module name starts with this.", default=None)
    contains: str | None = help_field("The module name contains this.", default=None)


@attrs.frozen
class NdimRule:
    """``kind: ndim``: the parameter has between ``min`` and ``max`` dimensions (1-D: biases, norms)."""

    max: int | None = help_field("At most this many dimensions.", default=None, validator=non_negative())
    min: int | None = help_field("At least this many dimensions.", default=None, validator=non_negative())


def _regex(config: RegexRule) -> RuleMatcher:
    try:
        compiled = re.compile(config.pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {config.pattern!r}: {exc}", "pattern") from None
    search = compiled.search
    return lambda info: search(info.name) is not None


def _name(config: NameRule) -> RuleMatcher:
    needle = config.contains
    return lambda info: needle in info.name


def _module_type(config: ModuleTypeRule) -> RuleMatcher:
    wanted = frozenset(config.types)
    if not wanted:
        raise ConfigError("needs at least one class name", "types")
    cache: dict[type, bool] = {}

    def match(info: ParamInfo) -> bool:
        cls = type(info.module)
        if cls not in cache:
            cache[cls] = any(base.__name__ in wanted for base in cls.__mro__)
        return cache[cls]

    return match


def _module_path(config: ModulePathRule) -> RuleMatcher:
    if config.prefix is None and config.contains is None:
        raise ConfigError("give prefix or contains (or both)")
    prefix, contains = config.prefix, config.contains
    return lambda info: (
        (prefix is None or info.module_name.startswith(prefix)) and (contains is None or contains in info.module_name)
    )


def _ndim(config: NdimRule) -> RuleMatcher:
    low = config.min if config.min is not None else 0
    high = config.max if config.max is not None else 1 << 30
    return lambda info: low <= info.param.ndim <= high


def _norm(_config: None) -> RuleMatcher:
    return lambda info: isinstance(info.module, NORM_TYPES)


def _bias(_config: None) -> RuleMatcher:
    return lambda info: info.leaf_name == "bias"


def _all(_config: None) -> RuleMatcher:
    return lambda info: True


def rule_specs() -> list[RuleSpec]:
    """The standard rule kinds."""
    return [
        RuleSpec("regex", RegexRule, _regex, "re.search of a pattern in the parameter's dotted name"),
        RuleSpec("name", NameRule, _name, "the parameter's dotted name contains a substring"),
        RuleSpec("module_type", ModuleTypeRule, _module_type, "the owning module is one of the given classes"),
        RuleSpec("module_path", ModulePathRule, _module_path, "the owning module's name has a prefix / substring"),
        RuleSpec("ndim", NdimRule, _ndim, "the parameter has between min and max dimensions"),
        RuleSpec("norm", None, _norm, "parameters of norm layers (BatchNorm, SyncBN, LayerNorm, GroupNorm, ...)"),
        RuleSpec("bias", None, _bias, "parameters named bias"),
        RuleSpec("all", None, _all, "every parameter"),
    ]
