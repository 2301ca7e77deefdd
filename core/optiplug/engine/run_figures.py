"""The run's figures: its clock (updates per epoch and in total) and its batch.

``build()`` arguments win over the recipe's ``run`` section, which wins over
torch.distributed, which wins over the defaults.
"""

from __future__ import annotations

import math
import os
from typing import Any

import attrs

from optiplug.errors import ConfigError
from optiplug.plugin_system.records import Clock
from optiplug.recipe.model import Recipe, RunConfig
from optiplug.recipe.numbers import count_problem


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


FIGURES = ("steps_per_epoch", "num_epochs", "batch_size_per_device", "world_size")
"""The run figures ``build()`` takes as arguments (the fields of RunConfig a user passes)."""


def given_figures(**figures: int | None) -> RunConfig:
    """The run figures passed to a public entry point as one value, each checked.

    Each is None (not given) or a whole number > 0; anything else is a ConfigError at
    ``build(name=...)``.
    """
    for name, value in figures.items():
        problem = None if value is None else count_problem(value)
        if problem:
            raise ConfigError(f"{name} {problem}", f"build({name}=...)")
    return RunConfig(**figures)


def resolve_batch(recipe: Recipe, given: RunConfig) -> Batch:
    """The run's batch: build() arguments, then the recipe, then torch.distributed, then 1."""
    run = recipe.run
    dist_world, dist_local = distributed_world()
    world = _first(given.world_size, run.world_size, dist_world, 1)
    per_node = _first(run.devices_per_node, dist_local, world)
    return Batch(_first(given.batch_size_per_device, run.batch_size_per_device, 1), world, min(per_node, world))


def resolve_clock(recipe: Recipe, given: RunConfig) -> Clock:
    """Updates per epoch and in total, from build() arguments or the recipe's ``run``."""
    run = recipe.run
    per_epoch = _first(given.steps_per_epoch, run.steps_per_epoch)
    epochs = _first(given.num_epochs, run.num_epochs)
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
