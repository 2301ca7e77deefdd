"""``optiplug.build``: a config and a model -> a ready optimizer and scheduler."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer

from optiplug.binding import ScheduleBinder
from optiplug.built import Built, GroupSummary
from optiplug.config.loaders import load
from optiplug.config.numbers import is_number, number_problem, parse_float
from optiplug.config.parse import parse_recipe, unstructure_recipe
from optiplug.config.recipe import Recipe
from optiplug.errors import ConfigError, join_path
from optiplug.grouping import GroupPlan, plan_groups
from optiplug.records import Clock, DialectContext
from optiplug.registry import Registry, get_registry
from optiplug.scaling import Batch, distributed_world, scale_recipe
from optiplug.scheduler import OptiplugScheduler, fingerprint

CANONICAL = "canonical"


def to_recipe(
    config: Any,
    *,
    dialect: str | None = None,
    registry: Registry | None = None,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
) -> Recipe:
    """The canonical recipe for any config (a dialect's config is translated)."""
    registry = registry or get_registry()
    if isinstance(config, Recipe):
        return config
    loaded = load(config)
    data = loaded.data
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected the config to be a mapping at the top, got {type(data).__name__}")
    spec = _dialect_for(data, dialect, registry)
    if spec is None:
        return parse_recipe(data, registry)
    context = DialectContext(registry, steps_per_epoch, num_epochs, batch_size_per_device, world_size, loaded.source)
    return spec.translate(data, context)


def _dialect_for(data: Mapping[str, Any], forced: str | None, registry: Registry) -> Any:
    if forced is not None:
        return None if forced == CANONICAL else registry.dialects.get(forced, "dialect")
    candidates = sorted(registry.dialects, key=lambda p: -p.record.priority)
    for provided in candidates:
        if provided.record.detect(data):
            return provided.record
    return None


def build(
    config: Any,
    model: Any,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
    *,
    dialect: str | None = None,
    registry: Registry | None = None,
) -> Built:
    """Build the optimizer, param groups and scheduler a config describes, for ``model``.

    ``config`` is a mapping, a :class:`Recipe`, an OmegaConf DictConfig, or a path
    (.yaml, .yml, .json, or an MMCV-style .py read without executing it). Its dialect
    (VISSL, MMCV, canonical) is detected, or forced with ``dialect=``. ``model`` is an
    ``nn.Module`` or an iterable of parameters or ``(name, parameter)`` pairs.
    ``world_size=None`` means torch.distributed's world size when initialized, else 1.
    """
    registry = registry or get_registry()
    recipe = to_recipe(
        config,
        dialect=dialect,
        registry=registry,
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    recipe = scale_recipe(recipe, registry, resolve_batch(recipe, batch_size_per_device, world_size))
    clock = resolve_clock(recipe, steps_per_epoch, num_epochs)
    plans = plan_groups(model, recipe.rules, registry)
    optimizer, base = make_optimizer(recipe, plans, registry)
    for i, wrapper in enumerate(recipe.wrappers):
        spec = registry.wrappers.get(wrapper.name, join_path("wrappers", i, "name"))
        optimizer = spec.wrap(optimizer, wrapper.params)
    binder = ScheduleBinder(recipe.schedules, base, clock, registry)
    bindings = [
        b
        for i, plan in enumerate(plans)
        for b in binder.bind(i, optimizer.param_groups[i], plan.settings, plan.schedules)
    ]
    data = unstructure_recipe(recipe, registry)
    scheduler = OptiplugScheduler(optimizer, bindings, clock, fingerprint(data), bind_added=binder.bind_added)
    summaries = [GroupSummary.of(i, plan, optimizer.param_groups[i]) for i, plan in enumerate(plans)]
    return Built(recipe, optimizer, scheduler, summaries, clock)


def resolve_batch(recipe: Recipe, per_device: int | None, world_size: int | None) -> Batch:
    """The run's batch: build() arguments, then the recipe, then torch.distributed, then 1."""
    run = recipe.run
    dist_world, dist_local = distributed_world()
    for name, value in (("batch_size_per_device", per_device), ("world_size", world_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name} must be a whole number > 0, got {value!r}", f"build({name}=...)")
    world = _first(world_size, run.world_size, dist_world, 1)
    per_node = _first(run.devices_per_node, dist_local, world)
    return Batch(_first(per_device, run.batch_size_per_device, 1), world, min(per_node, world))


def resolve_clock(recipe: Recipe, steps_per_epoch: int | None, num_epochs: int | None) -> Clock:
    """Updates per epoch and in total, from build() arguments or the recipe's ``run``."""
    run = recipe.run
    per_epoch = _first(steps_per_epoch, run.steps_per_epoch)
    epochs = _first(num_epochs, run.num_epochs)
    for name, value in (("steps_per_epoch", per_epoch), ("num_epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name} must be a whole number > 0, got {value!r}", f"build({name}=...)")
    total = run.total_steps or (per_epoch * epochs if per_epoch and epochs else None)
    if per_epoch is None:
        if _has_schedules(recipe) and total is None:
            raise ConfigError("the schedules need the run's length: pass steps_per_epoch and num_epochs to build()")
        per_epoch = int(total) if total else 1
    return Clock(per_epoch, float(total) if total else None)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _has_schedules(recipe: Recipe) -> bool:
    return bool(recipe.schedules) or any(rule.schedules for rule in recipe.rules)


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
            from optiplug.errors import did_you_mean

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
