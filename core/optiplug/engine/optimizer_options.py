"""The optimizer's arguments and each param group's options, checked against the optimizer.

A keyword argument is checked against the optimizer factory's signature (a typo is a
ConfigError with a did-you-mean); a group option against the optimizer's own value of
that option (a number where it takes a number, two numbers for ``betas``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer

from optiplug.engine.grouping import GroupPlan
from optiplug.errors import ConfigError, did_you_mean, join_path
from optiplug.plugin_system.catalogues import Registry
from optiplug.recipe.model import Recipe
from optiplug.recipe.numbers import is_number, number_problem, parse_float


def optimizer_arguments(
    factory: Any, kwargs: Mapping[str, Any], path: str = "optimizer"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked keyword arguments, and the defaults a group starts from (signature + kwargs)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return dict(kwargs), dict(kwargs)
    params = list(signature.parameters.values())[1:]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in named and not accepts_any:
            raise ConfigError(
                f"unknown argument{did_you_mean(key, named)}; accepted: {', '.join(named)}", join_path(path, key)
            )
        checked[key] = _coerce(key, value, named[key].default if key in named else None, join_path(path, key))
    defaults = {k: p.default for k, p in named.items() if p.default is not p.empty and not _is_required(p.default)}
    return checked, defaults | checked


def _is_required(value: Any) -> bool:
    return type(value).__name__ == "_RequiredParameter"


def _coerce(key: str, value: Any, default: Any, path: str) -> Any:
    """A keyword argument checked against its default's type (YAML's ``1e-08`` string is a float)."""
    if isinstance(default, float) and isinstance(value, str):
        number, problem = parse_float(value)
        if number is None:
            raise ConfigError(problem or "expected a number", path)
        value = number
    if default is None or default is inspect.Parameter.empty or _is_required(default):
        if isinstance(value, int | float) and not isinstance(value, bool) and number_problem(value):
            raise ConfigError(str(number_problem(value)), path)
        return value
    return checked_option(key, value, default, path)


def make_optimizer(recipe: Recipe, plans: list[GroupPlan], registry: Registry) -> tuple[Optimizer, dict[str, Any]]:
    """The optimizer over the planned groups, and the option values groups start from."""
    spec = registry.optimizers.get(recipe.optimizer.name, "optimizer.name")
    kwargs, base = optimizer_arguments(spec.factory, recipe.optimizer.kwargs)
    groups = [group_options(plan, base, i) for i, plan in enumerate(plans)]
    try:
        optimizer = spec.factory(groups, **kwargs)
    except ConfigError as exc:
        raise exc.under("optimizer") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{spec.name} refused the arguments: {exc}", "optimizer") from exc
    return optimizer, base


def group_options(plan: GroupPlan, base: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A torch param-group dict: the plan's fixed options and the scaled ones resolved."""
    group: dict[str, Any] = {"params": plan.params}
    for option, setting in plan.settings.items():
        reference = base.get(option)
        if not setting.scaled:
            group[option] = checked_option(option, setting.value, reference, setting.origin)
        elif _is_number(reference):
            group[option] = reference * setting.value
        else:
            raise ConfigError(
                f"{option}_mult needs a number for the optimizer's {option}, which is {reference!r}; "
                f"give optimizer.{option}",
                setting.origin,
            )
    return group


def _is_number(value: Any) -> bool:
    return is_number(value)


def checked_option(option: str, value: Any, reference: Any, path: str) -> Any:
    """A group option's value, checked against the optimizer's own value of that option."""
    if isinstance(reference, bool) or (reference is None and isinstance(value, bool)):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif _is_number(reference) or (reference is None and _is_number(value)):
        if _is_number(value):
            return value
        raise ConfigError(str(number_problem(value)), path)
    elif isinstance(reference, str) and isinstance(value, str):
        return value
    elif isinstance(reference, tuple | list) and isinstance(value, tuple | list):
        if len(value) == len(reference) and all(_is_number(v) for v in value):
            return tuple(value)
        expected = f"{len(reference)} numbers"
    else:
        expected = f"a value like the optimizer's {option} ({reference!r})"
    raise ConfigError(f"expected {expected}, got {value!r}", path)
