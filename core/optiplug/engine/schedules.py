"""Building schedules from their configs, and the helpers every schedule uses.

A schedule maps a float64 tensor of update indices to values (see
:class:`optiplug.plugin.Schedule`). It is built from a :class:`ScheduleConfig` against a
:class:`Clock` (updates per epoch and in total). An ``update_interval: epoch`` schedule
holds, through an epoch, the value of the epoch's first update (:class:`EpochHeld`).
The composite combinator lives in :mod:`optiplug.engine.composite`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch

from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.records import Clock, MetricState, Schedule, ScheduleContext, ScheduleSpec
from optiplug.recipe.model import ScheduleConfig

if TYPE_CHECKING:
    from optiplug.plugin_system.records import RegistryView

WHERE_EPSILON = 1e-6
"""fvcore's boundary shift: progress within 1e-6 below a boundary counts as past it."""


def progress(steps: torch.Tensor, clock: Clock, path: str = "") -> torch.Tensor:
    """Fraction of the run done before each update: ``steps / total_steps`` (fvcore's ``where``)."""
    if clock.total_steps is None:
        raise ConfigError("this schedule needs the length of the run (num_epochs or total_steps)", path)
    return steps / clock.total_steps


def as_steps(steps: Sequence[float] | torch.Tensor | range) -> torch.Tensor:
    """Update indices as the float64 tensor schedules take."""
    if isinstance(steps, torch.Tensor):
        return steps.to(torch.float64)
    if isinstance(steps, range):
        return torch.arange(steps.start, steps.stop, steps.step, dtype=torch.float64)
    return torch.tensor(list(steps), dtype=torch.float64)


@attrs.frozen
class EpochHeld:
    """``update_interval: epoch``: each update gets the value of its epoch's first update."""

    inner: Schedule
    steps_per_epoch: int

    @property
    def relative(self) -> bool:
        """Whether the wrapped schedule computes from the group's base value."""
        return bool(getattr(self.inner, "relative", False))

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The inner schedule at the first update of each step's epoch."""
        return self.inner.values(torch.floor(steps / self.steps_per_epoch) * self.steps_per_epoch)


def build_schedule(
    config: ScheduleConfig, clock: Clock, registry: RegistryView, *, base: float = 1.0, path: str = ""
) -> Schedule:
    """Build ``config`` against ``clock``; ``base`` is the group's base value (relative schedules)."""
    spec = registry.schedules.get(config.name, join_path(path, "name"))

    def nested(child: ScheduleConfig, child_clock: Clock, child_path: str) -> Schedule:
        return build_schedule(child, child_clock, registry, base=base, path=child_path)

    context = ScheduleContext(clock=clock, base=base, path=path, build=nested)
    try:
        schedule = spec.factory(config.params, context)
    except ConfigError as exc:
        raise (exc.under(path) if path and not exc.path.startswith(path) else exc) from None
    except (ValueError, TypeError, ArithmeticError, IndexError, KeyError) as exc:
        raise ConfigError(f"schedule {config.name!r} cannot be built: {exc}", path) from exc
    if config.update_interval == "epoch":
        if metric_state_of(schedule) is not None:
            raise ConfigError(
                f"schedule {config.name!r} changes only when a metric is reported, not with the update: "
                "update_interval does not apply to it (leave it out)",
                join_path(path, "update_interval"),
            )
        return EpochHeld(schedule, clock.steps_per_epoch)
    return schedule


def metric_state_of(schedule: Schedule) -> MetricState | None:
    """The decisions of a metric-driven schedule (its ``metric_state``), None for a pure one."""
    return getattr(schedule, "metric_state", None)


def metric_number(value: Any, name: str = "the metric") -> float:
    """A reported metric as a finite float: a number, or a tensor / numpy value of one element.

    A tensor of several elements, a bool, text or a NaN / infinite value is refused
    (TypeError, ValueError) with what to report instead.
    """
    if isinstance(value, bool) or isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"{name} must be one number, got a tensor of shape {tuple(value.shape)}: report its mean "
                "(loss.mean()) or one element"
            )
        number = float(value.detach().reshape(()).item())
    elif isinstance(value, numbers.Real):
        number = float(value)
    elif hasattr(value, "item") and getattr(value, "size", None) == 1:  # a numpy array or scalar
        number = metric_number(value.item(), name)
    else:
        raise TypeError(f"{name} must be a number or a one-element tensor, got {type(value).__name__} {value!r}")
    if not math.isfinite(number):
        raise ValueError(
            f"{name} is {number}: a schedule cannot decide on it (a diverged run?); report finite values only"
        )
    return number


def read_metric(metric: float | Mapping[str, Any], monitor: str | None, where: str) -> float:
    """The metric a schedule reads from a report: the number, or the ``monitor`` entry of a mapping."""
    if not isinstance(metric, Mapping):
        return metric_number(metric)
    if monitor is None:
        raise ValueError(
            f"{where} was given a mapping of metrics ({', '.join(map(str, metric))}) but has no monitor: "
            "report one number, or give the schedule's monitor (the key to read)"
        )
    if monitor not in metric:
        raise ValueError(
            f"{where} reads the metric {monitor!r}, which the report does not hold; it holds: "
            f"{', '.join(map(str, metric)) or '(nothing)'}"
        )
    return metric_number(metric[monitor], f"the metric {monitor!r}")


def is_relative(schedule: Schedule, spec: ScheduleSpec) -> bool:
    """Whether a built schedule computes each group's value from its base value."""
    return bool(getattr(schedule, "relative", spec.relative))


def evaluate(
    config: ScheduleConfig, clock: Clock, registry: RegistryView, steps: Any = None, *, base: float = 1.0
) -> torch.Tensor:
    """The values of ``config`` at ``steps`` (default: every update of the run), vectorized."""
    if steps is None:
        if clock.total_steps is None:
            raise ConfigError("give steps to evaluate an open-ended schedule")
        steps = range(math.ceil(clock.total_steps))
    return build_schedule(config, clock, registry, base=base).values(as_steps(steps))
