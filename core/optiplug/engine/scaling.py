"""Scaling the learning rate with the global batch (Goyal et al., 2017).

``value = base_value * r`` with ``r = batch / base_batch_size`` (linear) or ``sqrt`` of
it. Each schedule's plugin says how the schedule moves to that peak (a cosine keeps its
end/start ratio, a multistep becomes geometric from the new peak, ...). The composite's
rule (:mod:`optiplug.engine.composite`) rescales every part and treats a linear part as
a warmup from the lr of one node's batch, removed on one node or when it would not rise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

from optiplug.engine.run_figures import Batch
from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.records import ScalingContext, ScalingRule
from optiplug.recipe.model import Recipe, ScalingConfig, ScheduleConfig

if TYPE_CHECKING:
    from optiplug.plugin_system.records import RegistryView


def factor_for(config: ScalingConfig, batch_size: int) -> float:
    """The lr multiplier for a global batch: the batch ratio, or its square root."""
    ratio = float(batch_size) / float(config.base_batch_size)
    return ratio if config.method == "linear" else math.pow(ratio, 0.5)


def rescale(
    schedule: ScheduleConfig,
    config: ScalingConfig,
    base_value: float,
    batch: Batch,
    registry: RegistryView,
    path: str = "",
) -> ScheduleConfig:
    """``schedule`` moved to the peak ``base_value * factor`` by its scaling rule."""
    factor = factor_for(config, batch.size)

    def recurse(child: ScheduleConfig, child_path: str) -> ScheduleConfig:
        return _apply_rule(child, attrs.evolve(context, path=child_path), registry)

    context = ScalingContext(
        value=base_value * factor,
        factor=factor,
        base_value=base_value,
        base_batch_size=config.base_batch_size,
        batch_size=batch.size,
        batch_per_node=batch.per_node,
        num_nodes=batch.num_nodes,
        rescale=recurse,
        path=path,
    )
    return _apply_rule(schedule, context, registry)


def _apply_rule(schedule: ScheduleConfig, context: ScalingContext, registry: RegistryView) -> ScheduleConfig:
    if schedule.name not in registry.scaling:
        known = ", ".join(registry.scaling.names())
        raise ConfigError(
            f"schedule {schedule.name!r} has no lr scaling rule; schedules that scale: {known}", context.path
        )
    rule: ScalingRule = registry.scaling.get(schedule.name)
    return rule.rescale(schedule, context)  # type: ignore[no-any-return]


def scale_recipe(recipe: Recipe, registry: RegistryView, batch: Batch) -> Recipe:
    """The recipe with its ``lr_scaling`` applied (the scaled option's schedules, or its constant)."""
    config = recipe.lr_scaling
    if config is None:
        return recipe
    option = config.option
    base_value = config.base_value if config.base_value is not None else recipe.optimizer.kwargs.get(option)
    if not isinstance(base_value, int | float) or isinstance(base_value, bool):
        raise ConfigError(f"give lr_scaling.base_value or the optimizer's {option}", "lr_scaling.base_value")
    schedules = dict(recipe.schedules)
    if option in schedules:
        schedules[option] = rescale(
            schedules[option], config, base_value, batch, registry, join_path("schedules", option)
        )
        rules = [
            _scale_rule_overrides(r, i, option, config, base_value, batch, registry) for i, r in enumerate(recipe.rules)
        ]
        return attrs.evolve(recipe, schedules=schedules, rules=rules)
    kwargs = dict(recipe.optimizer.kwargs) | {option: base_value * factor_for(config, batch.size)}
    return attrs.evolve(recipe, optimizer=attrs.evolve(recipe.optimizer, kwargs=kwargs))


def _scale_rule_overrides(rule, index, option, config, base_value, batch, registry):  # type: ignore[no-untyped-def]
    if option not in rule.schedules:
        return rule
    path = join_path("rules", index, "schedules", option)
    scaled = rescale(rule.schedules[option], config, base_value, batch, registry, path)
    return attrs.evolve(rule, schedules=dict(rule.schedules) | {option: scaled})
