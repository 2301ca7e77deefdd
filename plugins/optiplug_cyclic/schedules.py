"""Cyclical schedules (Smith's CLR, adamwr's policies): one shape repeated over equal cycles.

Registered names: ``cyclic_cosine``, ``arccosine``, ``triangular``, ``triangular2``,
``exp_range``. Each cycle has the same length (``cycle_epochs`` or ``cycle_fraction``;
neither: one cycle over the whole run or composite part). ``triangular2`` halves the
peak each cycle; ``exp_range`` multiplies it by ``gamma ** n``, n the update index.
Growing periods, peak decay and warmup are the ``restarts`` schedule's job (plugin
``optiplug_restarts``), which repeats any of these shapes.
"""

from __future__ import annotations

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, ScheduleSpec, help_field, in_range, positive
from optiplug_cyclic.profiles import Shape, policy_shape
from optiplug_cyclic.ranges import RangeOptions, ValueRange
from optiplug_cyclic.timebase import Timebase, length_in

CYCLE_FIELDS = ("cycle_epochs", "cycle_fraction")


@attrs.frozen
class CycleConfig(RangeOptions):
    """``cyclic_cosine`` / ``arccosine``: the shape over cycles of equal length."""

    cycle_epochs: float | None = help_field(
        "Length of one cycle in epochs (CLR's 2 x step_size). Unset, with cycle_fraction unset: "
        "one cycle over the whole run.",
        default=None,
        validator=positive(),
    )
    cycle_fraction: float | None = help_field(
        "Length of one cycle as a fraction of the run.", default=None, validator=positive()
    )

    def __attrs_post_init__(self) -> None:
        length_in(self.cycle_epochs, self.cycle_fraction, CYCLE_FIELDS)

    def shape(self, policy: str) -> Shape:
        """The shape of ``policy`` with this config's options."""
        return policy_shape(policy)


@attrs.frozen
class TriangularConfig(CycleConfig):
    """``triangular`` / ``triangular2``: CLR's triangle (triangular2 halves the peak each cycle)."""

    triangular_step: float = help_field(
        "Fraction of each cycle spent rising (0.5: symmetric).", default=0.5, validator=in_range(0.0, 1.0)
    )

    def shape(self, policy: str) -> Shape:
        """The triangle rising over ``triangular_step`` of the cycle."""
        return policy_shape(policy, self.triangular_step)


@attrs.frozen
class ExpRangeConfig(TriangularConfig):
    """``exp_range``: the triangle with its peak times ``gamma ** n`` (n = update index, CLR)."""

    gamma: float = help_field("Peak factor per update (CLR uses e.g. 0.99994).", default=1.0, validator=positive())

    def shape(self, policy: str) -> Shape:
        """The triangle with the exponential envelope."""
        return policy_shape(policy, self.triangular_step, self.gamma)


class Cyclic:
    """A shape repeated over cycles of equal length, mapped to values by a :class:`ValueRange`.

    >>> # triangular, cycle_epochs 2, 2 updates per epoch, peak 1 (relative, base 1):
    >>> # steps 0..4 -> 0, 0.5, 1, 0.5, 0
    """

    def __init__(self, shape: Shape, value_range: ValueRange, timebase: Timebase, cycle: float | None) -> None:
        self.shape = shape
        self.range = value_range
        self.timebase = timebase
        self.cycle = cycle

    @property
    def relative(self) -> bool:
        """Whether each group's own value is the peak."""
        return self.range.relative

    def locate(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each step's cycle index and progress ``u`` in [0, 1] through it."""
        x = self.timebase.position(steps)
        if self.cycle is None:
            return torch.zeros_like(x), x.clamp(0.0, 1.0)
        index = torch.floor((x + self.timebase.tolerance) / self.cycle).clamp(min=0.0)
        return index, ((x - index * self.cycle) / self.cycle).clamp(0.0, 1.0)

    def multiplier(self, steps: torch.Tensor) -> torch.Tensor:
        """``envelope(cycle, n) * profile(u)``, the value before the range is applied."""
        index, u = self.locate(steps)
        return self.shape.envelope(index, steps) * self.shape.profile(u)

    def period_epochs(self, steps: torch.Tensor) -> torch.Tensor:
        """The cycle's length in epochs at each step (T of the normalized weight decay)."""
        length = 1.0 if self.cycle is None else self.cycle
        return torch.full_like(steps, float(self.timebase.epochs(length)))

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value at each step."""
        return self.range(self.multiplier(steps))


def cyclic_factory(policy: str):  # type: ignore[no-untyped-def]
    """The schedule factory of ``policy`` for the registry."""

    def build(config: CycleConfig, context: ScheduleContext) -> Cyclic:
        length = length_in(config.cycle_epochs, config.cycle_fraction, CYCLE_FIELDS)
        cycle, in_epochs = (None, False) if length is None else length
        if cycle is None and context.clock.total_steps is None:
            raise ConfigError("one cycle over the run needs the run's length; or give cycle_epochs", context.path)
        timebase = Timebase.choose(context.clock, in_epochs, context.path)
        return Cyclic(config.shape(policy), ValueRange.of(config, context.base), timebase, cycle)

    return build


def schedule_specs() -> list[ScheduleSpec]:
    """The records of the cyclical schedules (relative unless max_value is set)."""

    def spec(name: str, policy: str, config: type, description: str) -> ScheduleSpec:
        return ScheduleSpec(name, config, cyclic_factory(policy), description, relative=True)

    return [
        spec("cyclic_cosine", "cosine", CycleConfig, "SGDR's half cosine from the peak to min_value, per cycle"),
        spec("arccosine", "arccosine", CycleConfig, "arccos(2u - 1) / pi per cycle: adamwr's steeper-ended cosine"),
        spec("triangular", "triangular", TriangularConfig, "CLR triangle from min_value up to the peak and back"),
        spec("triangular2", "triangular2", TriangularConfig, "CLR triangle whose peak halves every cycle"),
        spec("exp_range", "exp_range", ExpRangeConfig, "CLR triangle whose peak is times gamma ** update"),
    ]
