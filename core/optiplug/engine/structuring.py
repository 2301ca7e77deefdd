"""Structuring mappings into a :class:`Recipe` with the registry's plugin kinds, and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import cattrs

from optiplug.errors import ConfigError, did_you_mean
from optiplug.recipe.model import (
    INTERVALS,
    AccumulationConfig,
    ClipConfig,
    LossScaleConfig,
    OptimizerConfig,
    Recipe,
    RuleConfig,
    RunConfig,
    ScalingConfig,
    ScheduleConfig,
    WrapperConfig,
)
from optiplug.recipe.numbers import number_problem
from optiplug.recipe.strict_converter import make_converter, structure

if TYPE_CHECKING:
    from optiplug.plugin_system.records import RegistryView

T = TypeVar("T")


def _require_mapping(value: Any, what: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected {what} as a mapping with a {key!r} key, got {value!r}")
    if key not in value:
        raise ConfigError(f"{what} needs a {key!r} key; got keys {sorted(map(str, value))}", "")
    return value


def _structure_params(conv: cattrs.Converter, rest: Mapping[str, Any], cls: type | None) -> Any:
    if cls is None:
        if rest:
            raise ConfigError(f"takes no options, got {sorted(rest)}")
        return None
    return conv.structure(dict(rest), cls)


def _interval(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in INTERVALS:
        raise ConfigError(
            f"must be 'step' or 'epoch', got {value!r}{did_you_mean(str(value), INTERVALS)}", "update_interval"
        )
    return value.lower()


def recipe_converter(registry: RegistryView) -> cattrs.Converter:
    """A converter that structures schedule, rule, wrapper and optimizer configs by name."""
    conv = make_converter()

    def schedule(value: Any, _t: Any) -> ScheduleConfig:
        if isinstance(value, ScheduleConfig):
            return value
        value = _require_mapping(value, "a schedule", "name")
        spec = registry.schedules.get(value["name"], "name")
        rest = {k: v for k, v in value.items() if k not in ("name", "update_interval")}
        interval = _interval(value.get("update_interval", "step"))
        return ScheduleConfig(spec.name, _structure_params(conv, rest, spec.config_class), interval)

    def rule(value: Any, _t: Any) -> RuleConfig:
        if isinstance(value, RuleConfig):
            return value
        value = _require_mapping(value, "a param rule", "kind")
        spec = registry.rules.get(value["kind"], "kind")
        rest = {k: v for k, v in value.items() if k not in ("kind", "set", "schedules", "label")}
        params = _structure_params(conv, rest, spec.config_class)
        options = conv.structure(value.get("set", {}), dict[str, Any])
        _check_options(options)
        schedules = conv.structure(value.get("schedules", {}), dict[str, ScheduleConfig])
        label = None if value.get("label") is None else conv.structure(value["label"], str)
        return RuleConfig(spec.name, params, options, schedules, label)

    def wrapper(value: Any, _t: Any) -> WrapperConfig:
        if isinstance(value, WrapperConfig):
            return value
        value = _require_mapping(value, "an optimizer wrapper", "name")
        spec = registry.wrappers.get(value["name"], "name")
        rest = {k: v for k, v in value.items() if k != "name"}
        return WrapperConfig(spec.name, _structure_params(conv, rest, spec.config_class))

    def optimizer(value: Any, _t: Any) -> OptimizerConfig:
        if isinstance(value, OptimizerConfig):
            return value
        value = _require_mapping(value, "the optimizer", "name")
        spec = registry.optimizers.get(value["name"], "name")
        return OptimizerConfig(spec.name, {str(k): v for k, v in value.items() if k != "name"})

    conv.register_structure_hook(ScheduleConfig, schedule)
    conv.register_structure_hook(RuleConfig, rule)
    conv.register_structure_hook(WrapperConfig, wrapper)
    conv.register_structure_hook(OptimizerConfig, optimizer)
    _register_unstructure(conv)
    return conv


def _check_options(options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        if value is None:
            raise ConfigError("an option needs a value or a multiplier, got null", f"set.{key}")
        if key.endswith("_mult") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"a multiplier must be a number >= 0, got {value!r}", f"set.{key}")
        if isinstance(value, bool | str):
            continue
        items = value if isinstance(value, list | tuple) else [value]
        problem = next((p for p in map(number_problem, items) if p), None)
        if problem:
            raise ConfigError(problem, f"set.{key}")
        if key.endswith("_mult") and (not isinstance(value, int | float) or value < 0):
            raise ConfigError(f"a multiplier must be a number >= 0, got {value!r}", f"set.{key}")


def _flatten(conv: cattrs.Converter, head: dict[str, Any], params: Any) -> dict[str, Any]:
    if params is not None:
        head.update(conv.unstructure(params))
    return head


def _register_unstructure(conv: cattrs.Converter) -> None:
    conv.register_unstructure_hook(
        ScheduleConfig,
        lambda s: (
            _flatten(conv, {"name": s.name}, s.params)
            | ({"update_interval": s.update_interval} if s.update_interval != "step" else {})
        ),
    )
    conv.register_unstructure_hook(
        RuleConfig,
        lambda r: (
            _flatten(conv, {"kind": r.kind}, r.params)
            | ({"set": dict(r.set)} if r.set else {})
            | ({"schedules": {k: conv.unstructure(v) for k, v in r.schedules.items()}} if r.schedules else {})
            | ({"label": r.label} if r.label else {})
        ),
    )
    conv.register_unstructure_hook(WrapperConfig, lambda w: _flatten(conv, {"name": w.name}, w.params))
    conv.register_unstructure_hook(OptimizerConfig, lambda o: {"name": o.name, **o.kwargs})


def parse_recipe(data: Any, registry: RegistryView, path: str = "") -> Recipe:
    """A checked :class:`Recipe` from a mapping (or a Recipe, returned as is)."""
    if isinstance(data, Recipe):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping for the recipe, got {type(data).__name__}", path)
    return structure(converter_for(registry), dict(data), Recipe, path)


def unstructure_recipe(recipe: Recipe, registry: RegistryView) -> dict[str, Any]:
    """The recipe as plain data (what ``optiplug check`` prints), defaults left out."""
    data: dict[str, Any] = converter_for(registry).unstructure(recipe)
    return _drop_defaults(data, _defaults(registry))


def _defaults(registry: RegistryView) -> dict[str, Any]:
    return converter_for(registry).unstructure(Recipe())  # type: ignore[no-any-return]


SECTIONS = {
    "lr_scaling": ScalingConfig,
    "clip": ClipConfig,
    "accumulation": AccumulationConfig,
    "run": RunConfig,
    "loss_scale": LossScaleConfig,
}


def _drop_defaults(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Leave out sections equal to their default, and inside the fixed sections the fields at their default."""
    out = {}
    for key, value in data.items():
        if key != "optimizer" and value == defaults.get(key):
            continue
        if key in SECTIONS and isinstance(value, dict):
            fields = {f.name: f.default for f in attrs.fields(SECTIONS[key])}
            value = {k: v for k, v in value.items() if fields.get(k, attrs.NOTHING) != v}
        out[key] = value
    return out


def converter_for(registry: RegistryView) -> cattrs.Converter:
    """The registry's recipe converter, made once per registry."""
    derived = getattr(registry, "derived", None)
    if derived is None:
        return recipe_converter(registry)
    if "recipe_converter" not in derived:
        derived["recipe_converter"] = recipe_converter(registry)
    return derived["recipe_converter"]  # type: ignore[no-any-return]


def evolve_params(config: ScheduleConfig, **changes: Any) -> ScheduleConfig:
    """A schedule config with some of its own options changed."""
    return attrs.evolve(config, params=attrs.evolve(config.params, **changes))


def structure_config(data: Any, cls: type[T], registry: RegistryView, path: str = "") -> T:
    """Structure plain data into ``cls`` (a recipe section, a schedule, rule or wrapper config).

    Schedule, rule, wrapper and optimizer configs are looked up by name in ``registry``;
    every problem is one :class:`~optiplug.ConfigError` whose paths start at ``path``.
    """
    return structure(converter_for(registry), data, cls, path)


def unstructure_config(config: Any, registry: RegistryView) -> Any:
    """A recipe config (a schedule, rule, wrapper or whole recipe) as plain data, as it would be written."""
    return converter_for(registry).unstructure(config)
