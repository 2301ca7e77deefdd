"""The run's figures: its clock (updates per epoch and in total) and its batch.

``build()`` arguments win over the recipe's ``run`` section, which wins over
torch.distributed, which wins over the defaults.

The run's length has one definition, in every dialect and helper: ``steps_per_epoch``
is what the data loader yields in an epoch, ``len(loader)``, the number of
``built.step(loss)`` calls per epoch; ``run.total_steps`` counts the same batches.
Accumulation turns them into optimizer updates: ``accumulation.steps`` batches make one
update, so an epoch is ``steps_per_epoch / accumulation.steps`` updates and the schedules
(which count updates) run ``ceil(total / accumulation.steps)`` of them. Under MMCV's clock
(``schedule_clock: iterations``) the schedules count the batches themselves.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import attrs

from optiplug.errors import ConfigError, OptiplugWarning
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
    return RunConfig(**figures)  # type: ignore[arg-type]  # the figures are int fields of RunConfig


def resolve_batch(recipe: Recipe, given: RunConfig) -> Batch:
    """The run's batch: build() arguments, then the recipe, then torch.distributed, then 1."""
    run = recipe.run
    dist_world, dist_local = distributed_world()
    world = _first(given.world_size, run.world_size, dist_world, 1)
    per_node = _first(run.devices_per_node, dist_local, world)
    return Batch(_first(given.batch_size_per_device, run.batch_size_per_device, 1), world, min(per_node, world))


@attrs.frozen
class RunLength:
    """The run in the loader's batches (``built.step`` calls) and, in ``clock``, in the schedules' steps."""

    clock: Clock
    batches_per_epoch: int
    total_batches: int | None


def resolve_clock(recipe: Recipe, given: RunConfig) -> Clock:
    """Updates per epoch and in total (what the schedules count), from build() arguments or the recipe's ``run``."""
    return resolve_run(recipe, given).clock


def resolve_run(recipe: Recipe, given: RunConfig) -> RunLength:
    """The run's length in batches, and the schedules' clock after accumulation (module docstring)."""
    run = recipe.run
    per_epoch = _first(given.steps_per_epoch, run.steps_per_epoch)
    epochs = _first(given.num_epochs, run.num_epochs)
    product = per_epoch * epochs if per_epoch and epochs else None
    total = run.total_steps or product
    if run.total_steps and product and run.total_steps != product:
        warnings.warn(
            f"run.total_steps ({run.total_steps}) and steps_per_epoch x num_epochs ({per_epoch} x {epochs} = "
            f"{product}) cannot both be right; the run lasts run.total_steps ({run.total_steps} batches)",
            OptiplugWarning,
            stacklevel=4,
        )
    if per_epoch is None:
        if _has_schedules(recipe) and total is None:
            raise ConfigError("the schedules need the run's length: pass steps_per_epoch and num_epochs to build()")
        per_epoch = int(total) if total else 1
    n = recipe.accumulation.steps
    if n == 1 or recipe.accumulation.schedule_clock == "iterations":
        return RunLength(Clock(per_epoch, float(total) if total else None), per_epoch, total)
    updates = math.ceil(total / n) if total else None
    if per_epoch % n:
        _warn_partial_windows(per_epoch, n, epochs, updates, total)
    clock = Clock(math.ceil(per_epoch / n), float(updates) if updates else None)
    return RunLength(clock, per_epoch, total)


def _warn_partial_windows(per_epoch: int, n: int, epochs: int | None, updates: int | None, total: int | None) -> None:
    """An epoch that is not a whole number of updates: optiplug's count and a trainer's cannot both be right."""
    run = f"; the run's {total} batches make {updates} updates with built.step" if total else ""
    trainers = (
        f" (Lightning and Transformers close a window at each epoch's end: {math.ceil(per_epoch / n) * epochs} updates)"
        if epochs
        else ""
    )
    warnings.warn(
        f"steps_per_epoch ({per_epoch} batches, len(loader)) is not a multiple of accumulation.steps ({n}): an "
        f"epoch is {per_epoch / n:g} updates, which epoch-based schedules count as {math.ceil(per_epoch / n)}"
        f"{run}{trainers}; make len(loader) a multiple of {n} (drop_last) so both agree",
        OptiplugWarning,
        stacklevel=5,
    )


def resolve_compile(recipe: Recipe, given: RunConfig) -> bool:
    """Whether the run is prepared for torch.compile: ``build(compile=...)``, then ``run.compile``, then no."""
    return bool(_first(given.compile, recipe.run.compile, False))


def given_compile(value: Any) -> bool | None:
    """``build(compile=...)``: True, False or None (not given); anything else a ConfigError there."""
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"expected True, False or None, got {value!r}", "build(compile=...)")
    return value


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _has_schedules(recipe: Recipe) -> bool:
    return bool(recipe.schedules) or any(rule.schedules for rule in recipe.rules)
