"""The optimizer's arguments and each param group's options, checked against the optimizer.

A keyword argument is checked against the optimizer factory's signature (a typo is a
ConfigError with a did-you-mean); the options a rule sets against the keys the optimizer
reads (its arguments, the ``group_options`` its plugin and the wrappers' plugins declare,
and their multipliers ``lr_mult``, ``decay_mult``, ...); a group option's value against
the optimizer's own value of that option (a number where it takes a number, two numbers
for ``betas``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import attrs
from torch.optim import Optimizer

from optiplug.engine.grouping import MULT_ALIASES, GroupPlan, option_of
from optiplug.engine.tolerance import STRICT, Tolerance
from optiplug.engine.value_table import BOUNDS, OutOfBounds
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


def make_optimizer(
    recipe: Recipe, plans: list[GroupPlan], registry: Registry, tolerance: Tolerance = STRICT
) -> tuple[Optimizer, dict[str, Any]]:
    """The optimizer over the planned groups, and the option values groups start from.

    The optimizer's arguments and every group's options are kept inside their ranges
    (:data:`~optiplug.engine.value_table.BOUNDS`) unless the dialect tolerates it.
    """
    check_group_bounds(recipe, plans, tolerance)
    if any(ROUTE in plan.settings for plan in plans):  # rules set `optimizer: <name>`: several algorithms
        return routed_optimizer(recipe, plans, registry)
    spec = registry.optimizers.get(recipe.optimizer.name, "optimizer.name")
    kwargs, base = optimizer_arguments(spec.factory, recipe.optimizer.kwargs)
    groups = [group_options(plan, base, i) for i, plan in enumerate(plans)]
    try:
        optimizer = spec.factory(groups, **kwargs)
    except ConfigError as exc:
        raise exc.under("optimizer") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{spec.name} refused the arguments: {exc}", "optimizer") from exc
    for key, value in kwargs.items():  # after the optimizer's own checks, whose messages come first
        check_bounds(key, value, join_path("optimizer", key), tolerance)
    return optimizer, base


def declared_options(spec: Any) -> dict[str, Any] | None:
    """The options a param group of ``spec``'s optimizer reads, with their defaults (None: any key).

    Its factory's keyword arguments (one without a default maps to ``Parameter.empty``),
    and the ``group_options`` its plugin declares (mapped to None); None when the factory takes ``**kwargs``
    or has no readable signature.
    """
    try:
        params = list(inspect.signature(spec.factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    options = {
        p.name: p.empty if p.default is p.empty or _is_required(p.default) else p.default
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return {name: None for name in spec.group_options} | options


def multiplier_names(options: Mapping[str, Any]) -> list[str]:
    """``lr_mult``, ``decay_mult``, ...: a multiplier for each numeric or required option."""
    numeric = sorted(
        o for o, v in options.items() if v is inspect.Parameter.empty or (_is_number(v) and not isinstance(v, bool))
    )
    return [f"{o}_mult" for o in numeric] + [f"{a}_mult" for a, o in MULT_ALIASES.items() if o in numeric]


def group_keys(spec: Any, recipe: Recipe, registry: Registry, base: Mapping[str, Any]) -> dict[str, Any] | None:
    """The keys a param group of this optimizer may carry, with their values (None: any key)."""
    declared = declared_options(spec)
    if declared is None:
        return None
    keys = declared | {k: v for k, v in base.items() if v is not None}
    for i, wrapper in enumerate(recipe.wrappers):
        path = join_path("wrappers", i, "name")
        keys |= {o: keys.get(o) for o in registry.wrappers.get(wrapper.name, path).group_options}
    return keys


def check_rule_options(recipe: Recipe, registry: Registry, tolerance: Tolerance = STRICT) -> None:
    """Every key a rule's ``set`` writes is an option of the optimizer or a multiplier of one.

    A misspelt key is a ConfigError with a did-you-mean at ``rules[i].set.key``; where the
    config's framework copies any key into the group (MMCV), a warning. A multiplier of
    an option the optimizer lacks is always an error (there is no value to multiply).
    """
    spec = registry.optimizers.get(recipe.optimizer.name, "optimizer.name")
    _, base = optimizer_arguments(spec.factory, recipe.optimizer.kwargs)
    keys = group_keys(spec, recipe, registry, base)
    for i, rule in enumerate(recipe.rules):  # a rule routing groups to another algorithm: its options too
        route = rule.set.get(ROUTE)
        if keys is not None and isinstance(route, str) and route in registry.optimizers:
            routed = declared_options(registry.optimizers.get(route, join_path("rules", i, "set", ROUTE)))
            keys = None if routed is None else routed | keys
    if keys is None:
        return
    keys = {ROUTE: None} | keys if any(ROUTE in rule.set for rule in recipe.rules) else keys
    optimizer = spec.name
    multipliers = multiplier_names(keys)
    for i, rule in enumerate(recipe.rules):
        for key in rule.set:
            option, scaled = option_of(str(key))
            if option in keys:
                continue
            hint = did_you_mean(str(key), multipliers if scaled else [*sorted(keys), *multipliers])
            label = f" (rule {rule.label})" if rule.label else ""
            if scaled:  # a multiplier of nothing: no framework builds that
                raise ConfigError(
                    f"{key} needs a number for the optimizer's {option}, but {optimizer} has no option "
                    f"{option!r}{hint}{label}; its options: {', '.join(sorted(keys))}",
                    join_path("rules", i, "set", str(key)),
                )
            error = ConfigError(
                f"{optimizer} has no group option {key!r}{hint}{label}; a rule sets the optimizer's options "
                f"({', '.join(sorted(keys))}) or their multipliers (lr_mult, decay_mult, <option>_mult)",
                join_path("rules", i, "set", str(key)),
            )
            tolerance.refuse("group_options", error)


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


def check_group_bounds(recipe: Recipe, plans: list[GroupPlan], tolerance: Tolerance = STRICT) -> None:
    """The rules' fixed values inside their ranges, and their multiples of the optimizer's arguments."""
    kwargs = recipe.optimizer.kwargs
    for plan in plans:
        for option, setting in plan.settings.items():
            reference = kwargs.get(option)
            if not setting.scaled:
                check_bounds(option, setting.value, setting.origin, tolerance)
            elif _is_number(reference) and _is_number(setting.value):
                check_bounds(option, reference * setting.value, setting.origin, tolerance)


def check_bounds(option: str, value: Any, path: str, tolerance: Tolerance = STRICT) -> None:
    """``value`` of ``option`` inside its range (``betas``: each of them), else refused or warned about."""
    bound = BOUNDS.get(option)
    values = value if isinstance(value, tuple | list) else (value,)
    if bound is None or not values or not all(_is_number(v) for v in values):
        return
    for v in values:
        problem = bound.problem(option, float(v))
        if problem is not None:
            tolerance.refuse("option_bounds", OutOfBounds(f"{problem}, got {value!r}", path))
            return


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
    elif (reference is None or isinstance(reference, str)) and isinstance(value, str):
        return value
    elif isinstance(reference, tuple | list) and isinstance(value, tuple | list):
        if len(value) == len(reference) and all(_is_number(v) for v in value):
            return tuple(value)
        expected = f"{len(reference)} numbers"
    else:
        expected = f"a value like the optimizer's {option} ({reference!r})"
    raise ConfigError(f"expected {expected}, got {value!r}", path)


ROUTE = "optimizer"
"""The group key naming a group's algorithm: ``rules: [{kind: ndim, min: 2, set: {optimizer: muon}}]``."""

ROUTER = "multi"
"""The registered optimizer (plugin ``optiplug_multi``) that routes groups to their algorithms."""

SHARED = ("lr", "weight_decay")
"""The recipe's optimizer arguments (when given) a routed algorithm is built with, when it takes them."""


def routed_optimizer(recipe: Recipe, plans: list[GroupPlan], registry: Registry) -> tuple[Optimizer, dict[str, Any]]:
    """One optimizer routing each group to its algorithm: the rule-set ``optimizer``, else the recipe's.

    A group of the recipe's optimizer gets the recipe's arguments. Another algorithm is
    built with the ``lr`` and ``weight_decay`` the recipe gives (:data:`SHARED`), when it
    takes them, and its own defaults for the rest; its groups' rule options are checked
    against that algorithm's values. The groups go, in order, to the :data:`ROUTER`
    optimizer's factory with ``algorithms={name: (factory, kwargs)}`` and ``default``.
    """
    default = registry.optimizers.get(recipe.optimizer.name, "optimizer.name")
    kwargs, base = optimizer_arguments(default.factory, recipe.optimizer.kwargs)
    algorithms: dict[str, tuple[Any, dict[str, Any]]] = {default.name: (default.factory, kwargs)}
    bases: dict[str, dict[str, Any]] = {default.name: base}
    origins: dict[str, str] = {}
    groups = []
    for i, plan in enumerate(plans):
        route = plan.settings.get(ROUTE)
        name = default.name
        if route is not None:
            if route.scaled or not isinstance(route.value, str):
                message = f"names the group's algorithm, a registered optimizer; got {route.value!r}"
                raise ConfigError(message, route.origin)
            spec = registry.optimizers.get(route.value, route.origin)
            name = spec.name
            origins.setdefault(name, route.origin)
            if name not in algorithms:
                shared = {k: kwargs[k] for k in SHARED if k in kwargs and _takes(spec.factory, k)}
                own, bases[name] = optimizer_arguments(spec.factory, shared, route.origin)
                algorithms[name] = (spec.factory, own)
        others = attrs.evolve(plan, settings={k: v for k, v in plan.settings.items() if k != ROUTE})
        groups.append(group_options(others, bases[name], i) | {ROUTE: name})
    origin = next(iter(origins.values()), "optimizer")
    if ROUTER not in registry.optimizers.names():
        raise ConfigError(
            f"routing param groups to several algorithms needs the optimizer {ROUTER!r} of the plugin "
            "optiplug_multi, which is not loaded",
            origin,
        )
    router = registry.optimizers.get(ROUTER, origin)
    try:
        optimizer = router.factory(groups, algorithms=algorithms, default=default.name)
    except ConfigError as exc:
        raise exc.under("optimizer") from None
    except (ValueError, TypeError, KeyError) as exc:
        algorithm = getattr(exc, "algorithm", None)
        raise ConfigError(str(exc), origins.get(algorithm, "optimizer") if algorithm else "optimizer") from exc
    return optimizer, base


def _takes(factory: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
