"""Every option of every param group at every update of a run, exactly as the scheduler sets it.

The values come from the scheduler's own bindings (which schedule drives which option of
which group, with which scale), so a curve is what training sees: before update k,
group g holds ``curves.values[option][g, k]``. Options no schedule drives are constant
at the group's value.

A metric-driven schedule (``reduce_on_plateau``) is drawn with the reductions reported
so far and none after (a fresh build: its value never reduced); ``Curves.metric_driven``
names its options, and computing the curves warns about it.

>>> built = optiplug.build("recipe.yaml", model, steps_per_epoch=500, num_epochs=90)
>>> lr = compute_curves(built).values["lr"]      # (groups, 45000) float64
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from optiplug.engine.binding import Binding
from optiplug.engine.built_result import Built
from optiplug.engine.schedules import metric_state_of
from optiplug.engine.value_table import ValueTable
from optiplug.errors import ConfigError, OptiplugWarning
from optiplug.plugin_system.records import Clock

# The options shown when present, in this order; any other scheduled option follows.
STANDARD_OPTIONS = ("lr", "momentum", "beta1", "weight_decay")
BETA1 = "beta1"


@attrs.frozen
class Curves:
    """Per-update values: ``values[option]`` is a float64 tensor of shape (groups, updates)."""

    steps: torch.Tensor
    values: Mapping[str, torch.Tensor]
    scheduled: frozenset[str]
    clock: Clock
    metric_driven: frozenset[str] = frozenset()
    """Options a metric-driven schedule drives: drawn with the reductions reported so far only."""

    @property
    def options(self) -> list[str]:
        """The options held, standard ones first."""
        extra = sorted(set(self.values) - set(STANDARD_OPTIONS))
        return [o for o in STANDARD_OPTIONS if o in self.values] + extra

    def distinct(self, option: str) -> list[tuple[tuple[int, ...], torch.Tensor]]:
        """The different curves of ``option``, each with the groups that share it."""
        found: list[tuple[list[int], torch.Tensor]] = []
        for group, row in enumerate(self.values[option]):
            for groups, curve in found:
                if torch.equal(curve, row):
                    groups.append(group)
                    break
            else:
                found.append(([group], row))
        return [(tuple(groups), curve) for groups, curve in found]


def run_updates(clock: Clock) -> int:
    """The number of updates in the run (``ceil(total_steps)``)."""
    if clock.total_steps is None:
        raise ConfigError("the run is open-ended: give its length (--epochs and --steps-per-epoch, or run.total_steps)")
    return math.ceil(clock.total_steps)


def compute_curves(built: Built, num_steps: int | None = None) -> Curves:
    """The value of every scheduled and standard option of every group, for updates ``0 .. num_steps-1``.

    ``num_steps`` defaults to the run's length; steps past the end of the run hold the
    last value, as the scheduler does.
    """
    clock = built.clock
    count = run_updates(clock) if num_steps is None else int(num_steps)
    if count <= 0:
        raise ConfigError(f"the number of steps to evaluate must be > 0, got {count}")
    groups = built.optimizer.param_groups
    values = {option: _constant_rows(groups, option, count) for option in _present_options(groups)}
    evaluated: dict[int, torch.Tensor] = {}
    scheduled: set[str] = set()
    for binding in built.scheduler.bindings:
        option = _curve_name(binding)
        raw = evaluated.get(id(binding.table))
        if raw is None:
            raw = evaluated[id(binding.table)] = table_values(binding.table, count, clock.total_steps)
        rows = values.setdefault(option, torch.full((len(groups), count), math.nan, dtype=torch.float64))
        rows[binding.group] = raw * binding.scale
        scheduled.add(option)
    driven = {_curve_name(b): s for b in built.scheduler.bindings if (s := metric_state_of(b.table.schedule))}
    if driven:
        names = ", ".join(f"{option} ({state.describe()})" for option, state in sorted(driven.items()))
        warnings.warn(
            f"{names} is driven by reported metrics, not by the update: the curve holds the reductions reported "
            "so far and no later one (none in a fresh build), so it shows the value if the metric keeps improving",
            OptiplugWarning,
            stacklevel=2,
        )
    curves = Curves(torch.arange(count, dtype=torch.float64), values, frozenset(scheduled), clock, frozenset(driven))
    return curves


def table_values(table: ValueTable, count: int, total_steps: float | None) -> torch.Tensor:
    """The schedule of ``table`` before each of updates ``0 .. count-1`` (clamped to the end of the run).

    It is evaluated in the table's own aligned blocks: torch's vectorized and scalar
    kernels (``pow``, for one) may differ in the last bit, and which one an element gets
    depends on its position in the tensor, so only the scheduler's blocks give its exact values.
    """
    last = count - 1 if total_steps is None else min(count - 1, int(total_steps))
    block = table.block
    parts = [
        table.schedule.values(torch.arange(start, start + block, dtype=torch.float64))
        for start in range(0, last + 1, block)
    ]
    raw = torch.cat(parts)[: last + 1].to(torch.float64)
    if count > last + 1:
        raw = torch.cat([raw, raw[-1].expand(count - last - 1)])
    return raw


def _curve_name(binding: Binding) -> str:
    return BETA1 if binding.into_betas else binding.option


def _present_options(groups: list[dict[str, Any]]) -> list[str]:
    first = groups[0]
    present = [o for o in ("lr", "momentum", "weight_decay") if _number(first.get(o)) is not None]
    if "betas" in first:
        present.append(BETA1)
    return present


def group_value(group: Mapping[str, Any], option: str) -> float | None:
    """The group's current value of ``option`` (``beta1`` is ``betas[0]``), or None if it has none."""
    if option == BETA1:
        betas = group.get("betas")
        return _number(betas[0]) if betas is not None else None
    return _number(group.get(option))


def _number(value: Any) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _constant_rows(groups: list[dict[str, Any]], option: str, count: int) -> torch.Tensor:
    column = [group_value(g, option) for g in groups]
    filled = [math.nan if v is None else v for v in column]
    return torch.tensor(filled, dtype=torch.float64).unsqueeze(1).expand(len(groups), count).clone()
