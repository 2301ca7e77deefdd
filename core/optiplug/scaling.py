"""Scaling the learning rate with the global batch (Goyal et al., 2017).

``value = base_value * r`` with ``r = batch / base_batch_size`` (linear) or ``sqrt`` of
it. Each schedule's plugin says how the schedule moves to that peak (a cosine keeps its
end/start ratio, a multistep becomes geometric from the new peak, ...). The composite's
rule rescales every part and treats a linear part as a warmup (shared/spec D3).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import attrs

from optiplug.config.parse import evolve_params
from optiplug.config.recipe import Recipe, ScalingConfig, ScheduleConfig
from optiplug.errors import ConfigError, join_path
from optiplug.records import ScalingContext, ScalingRule

if TYPE_CHECKING:
    from optiplug.registry import Registry


@attrs.frozen
class Batch:
    """The batch a run trains with: per device, device count, devices per node."""

    per_device: int
    world_size: int = 1
    devices_per_node: int = 1

    @property
    def size(self) -> int:
        """The global batch."""
        return self.per_device * self.world_size

    @property
    def per_node(self) -> int:
        """The batch of one node."""
        return self.per_device * self.devices_per_node

    @property
    def num_nodes(self) -> int:
        """How many nodes the devices span."""
        return max(1, math.ceil(self.world_size / self.devices_per_node))


def distributed_world() -> tuple[int | None, int | None]:
    """World size and devices per node from torch.distributed (LOCAL_WORLD_SIZE), if initialized."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None, None
    local = os.environ.get("LOCAL_WORLD_SIZE")
    return dist.get_world_size(), int(local) if local and local.isdigit() else None


def factor_for(config: ScalingConfig, batch_size: int) -> float:
    """The lr multiplier for a global batch: the batch ratio, or its square root."""
    ratio = float(batch_size) / float(config.base_batch_size)
    return ratio if config.method == "linear" else math.pow(ratio, 0.5)


def rescale(
    schedule: ScheduleConfig, config: ScalingConfig, base_value: float, batch: Batch, registry: Registry, path: str = ""
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


def _apply_rule(schedule: ScheduleConfig, context: ScalingContext, registry: Registry) -> ScheduleConfig:
    if schedule.name not in registry.scaling:
        known = ", ".join(registry.scaling.names())
        raise ConfigError(
            f"schedule {schedule.name!r} has no lr scaling rule; schedules that scale: {known}", context.path
        )
    rule: ScalingRule = registry.scaling.get(schedule.name)
    return rule.rescale(schedule, context)  # type: ignore[no-any-return]


def scale_recipe(recipe: Recipe, registry: Registry, batch: Batch) -> Recipe:
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


def rescale_composite(schedule: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    """Composite rule (spec D3): rescale every part; treat linear parts as warmups.

    Every linear part starts at ``base_value * batch_per_node / base_batch_size`` and
    ends at the scaled value. The last linear part is removed on one node, or when its
    ramp would not rise. One remaining part then spans the whole run; with several, the
    removed part's length goes to the part after it (or before it, if it was last).
    """
    from optiplug.schedule import CompositeConfig

    params: CompositeConfig = schedule.params
    parts = [context.rescale(c, join_path(context.path, "schedulers", i)) for i, c in enumerate(params.schedulers)]
    linear = [i for i, c in enumerate(parts) if c.name == "linear"]
    if not linear:
        return evolve_params(schedule, schedulers=parts)
    start = context.base_value * (context.batch_per_node / context.base_batch_size)
    parts = [evolve_params(c, start_value=start) if c.name == "linear" else c for c in parts]
    last = linear[-1]
    if not (context.num_nodes == 1 or start >= parts[last].params.end_value):
        return evolve_params(schedule, schedulers=parts)
    lengths, modes = list(params.lengths), params.scalings()
    del parts[last]
    if not parts:
        raise ConfigError("lr scaling removed the warmup and nothing is left of the composite", context.path)
    if len(parts) == 1:
        return attrs.evolve(parts[0], update_interval=schedule.update_interval)
    heir = last if last < len(parts) else last - 1
    removed = lengths.pop(last)
    del modes[last]
    lengths[heir] += removed
    return evolve_params(schedule, schedulers=parts, lengths=lengths, interval_scaling=modes)


def composite_rule() -> ScalingRule:
    """The composite's scaling rule record."""
    return ScalingRule("composite", rescale_composite, "rescale each part; linear parts are warmups (D3)")
