"""Schedules: pure functions of the update index, and the combinators the core owns.

A schedule maps a float64 tensor of update indices to values (see
:class:`optiplug.Schedule`). It is built from a :class:`ScheduleConfig` against a
:class:`Clock` (updates per epoch and in total). Two combinators live here:

* epoch intervals: an ``update_interval: epoch`` schedule holds, through an epoch, the
  value of the epoch's first update;
* :class:`Composite`: fvcore's composite (``lengths`` summing to 1; each part
  ``rescaled`` to its own span or ``fixed`` on the whole run's progress).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch

from optiplug.config.recipe import ScheduleConfig
from optiplug.config.validators import help_field
from optiplug.errors import ConfigError, join_path
from optiplug.records import Clock, Schedule, ScheduleContext, ScheduleSpec

if TYPE_CHECKING:
    from optiplug.registry import Registry

WHERE_EPSILON = 1e-6


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
    config: ScheduleConfig, clock: Clock, registry: Registry, *, base: float = 1.0, path: str = ""
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
        return EpochHeld(schedule, clock.steps_per_epoch)
    return schedule


def is_relative(schedule: Schedule, spec: ScheduleSpec) -> bool:
    """Whether a built schedule computes each group's value from its base value."""
    return bool(getattr(schedule, "relative", spec.relative))


RESCALED, FIXED = "rescaled", "fixed"


@attrs.frozen
class CompositeConfig:
    """Options of ``composite``: parts run one after the other over fractions of the run."""

    schedulers: list[ScheduleConfig] = help_field("The parts, in order.")
    lengths: list[float] = help_field("Fraction of the run each part covers; they sum to 1 (within 1e-3).")
    interval_scaling: list[str] = help_field(
        "Per part: 'rescaled' (the part sees its own span as 0..1) or 'fixed' (the part sees the "
        "whole run's progress). Empty means all rescaled.",
        factory=list,
    )

    def __attrs_post_init__(self) -> None:
        n = len(self.schedulers)
        if n == 0:
            raise ConfigError("needs at least one schedule", "schedulers")
        if len(self.lengths) != n:
            raise ConfigError(f"needs one length per schedule ({n}), got {len(self.lengths)}", "lengths")
        if any(not math.isfinite(x) or x <= 0 for x in self.lengths):
            raise ConfigError(f"every length must be > 0, got {self.lengths}", "lengths")
        if abs(sum(self.lengths) - 1.0) >= 1e-3:
            raise ConfigError(
                f"lengths must sum to 1 (within 1e-3), got {self.lengths} (sum {sum(self.lengths):g})", "lengths"
            )
        if self.interval_scaling and len(self.interval_scaling) != n:
            raise ConfigError(
                f"needs one entry per schedule ({n}), got {len(self.interval_scaling)}; "
                "leave it empty for all 'rescaled'",
                "interval_scaling",
            )
        for i, mode in enumerate(self.interval_scaling):
            if mode not in (RESCALED, FIXED):
                raise ConfigError(f"must be 'rescaled' or 'fixed', got {mode!r}", f"interval_scaling[{i}]")

    def fixed_lengths(self) -> list[float]:
        """The lengths with the last one set to ``1 - sum(others)`` (as fvcore does)."""
        lengths = list(self.lengths)
        if sum(lengths) != 1.0:
            lengths[-1] = 1.0 - sum(lengths[:-1])
        return lengths

    def scalings(self) -> list[str]:
        """The interval scaling of each part (default: rescaled)."""
        return list(self.interval_scaling) or [RESCALED] * len(self.schedulers)


class Composite:
    """fvcore's composite schedule over the run's progress w = step / total_steps.

    Part i covers w in (b[i-1], b[i]] shifted by fvcore's 1e-6 (the boundary hands over
    for w > b - 1e-6). A rescaled part sees ``(w - start) / length``, a fixed part ``w``.

    >>> # linear 0.01 -> 0.1 over the first 10%, then cosine 0.1 -> 0 on the global w:
    >>> # w = 0, 0.05, 0.1, 0.5 give 0.01, 0.055, 0.097553, 0.05
    """

    def __init__(self, config: CompositeConfig, context: ScheduleContext) -> None:
        clock = context.clock
        total = clock.total_steps
        if total is None:
            raise ConfigError("composite needs the length of the run (num_epochs or total_steps)", context.path)
        assert context.build is not None
        self.total = float(total)
        self.lengths = config.fixed_lengths()
        self.modes = config.scalings()
        running, self.starts, ends = 0.0, [], []
        for length in self.lengths:
            running += length
            ends.append(running)
            self.starts.append(running - length)
        self.boundaries = torch.tensor(ends[:-1], dtype=torch.float64)
        self.parts: list[Schedule] = []
        for i, (child, length, mode) in enumerate(zip(config.schedulers, self.lengths, self.modes, strict=True)):
            child_clock = Clock(clock.steps_per_epoch, length * total) if mode == RESCALED else clock
            self.parts.append(context.build(child, child_clock, join_path(context.path, "schedulers", i)))
        kinds = {bool(getattr(p, "relative", False)) for p in self.parts}
        if len(kinds) > 1:
            raise ConfigError(
                "cannot mix relative and absolute schedules in one composite", join_path(context.path, "schedulers")
            )
        self.relative = kinds.pop()

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """Each step's value from the part its progress falls in."""
        where = steps / self.total
        index = torch.bucketize(where + WHERE_EPSILON, self.boundaries, right=False)
        out = torch.empty_like(where)
        for i, part in enumerate(self.parts):
            mask = index == i
            if not bool(mask.any()):
                continue
            w = where[mask]
            if self.modes[i] == RESCALED:
                local = (w - self.starts[i]) / self.lengths[i]
                out[mask] = part.values(local * (self.lengths[i] * self.total))
            else:
                out[mask] = part.values(steps[mask])
        return out


def composite_spec() -> ScheduleSpec:
    """The composite schedule's registry record."""
    return ScheduleSpec(
        name="composite",
        config_class=CompositeConfig,
        factory=Composite,
        description="Parts in sequence over fractions of the run (fvcore CompositeParamScheduler)",
    )


def evaluate(
    config: ScheduleConfig, clock: Clock, registry: Registry, steps: Any = None, *, base: float = 1.0
) -> torch.Tensor:
    """The values of ``config`` at ``steps`` (default: every update of the run), vectorized."""
    if steps is None:
        if clock.total_steps is None:
            raise ConfigError("give steps to evaluate an open-ended schedule")
        steps = range(math.ceil(clock.total_steps))
    return build_schedule(config, clock, registry, base=base).values(as_steps(steps))
