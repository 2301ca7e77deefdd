"""``restarts``: any shape repeated over periods that grow by ``t_mult`` (SGDR, adamwr).

At update k the position is ``x = k / steps_per_epoch`` epochs (or ``k / total`` of the
run) minus the warmup. The period it falls in (index i, start S_i, length T_i) is found
in closed form (:mod:`optiplug_restarts.periods`); ``u = (x - S_i) / T_i``. The multiplier
is

    eta = peak_decay ** i * step_decay ** k * shape_envelope(i, k) * profile(u)

and the value ``min_value + (peak - min_value) * eta``, the peak being each group's own
value (relative, adamwr's ``lr = min_lr + (initial_lr - min_lr) * eta``) or ``max_value``
(absolute). The first update of a period is its peak: adamwr's off-by-one (that update
ran at min_lr) is not reproduced.
"""

from __future__ import annotations

import attrs
import torch

from optiplug.plugin import (
    Clock,
    ConfigError,
    Schedule,
    ScheduleConfig,
    ScheduleContext,
    ScheduleSpec,
    help_field,
    in_range,
    join_path,
    non_negative,
    one_of,
    positive,
)
from optiplug_cyclic.profiles import Envelope, Shape
from optiplug_cyclic.ranges import RangeOptions, ValueRange
from optiplug_cyclic.schedules import CycleConfig, Cyclic
from optiplug_cyclic.timebase import Timebase, length_in
from optiplug_restarts.periods import CeilPeriods, ConstantPeriods, GeometricPeriods, Periods

ROUNDINGS = ("exact", "ceil")
PERIOD_FIELDS = ("period_epochs", "period_fraction")
WARMUP_FIELDS = ("warmup_epochs", "warmup_fraction")


def default_shape() -> ScheduleConfig:
    """The cosine shape (SGDR)."""
    return ScheduleConfig("cyclic_cosine", CycleConfig())


@attrs.frozen
class RestartsConfig(RangeOptions):
    """Options of ``restarts``: the shape, the periods, the peak's decay and the warmup."""

    shape: ScheduleConfig = help_field(
        "The shape of one period: cyclic_cosine (default), arccosine, triangular, triangular2, exp_range, "
        "or any absolute schedule (its value at the period's progress is the multiplier, "
        "e.g. {name: linear, start_value: 1, end_value: 0}).",
        factory=default_shape,
    )
    period_epochs: float | None = help_field(
        "Length of the first period in epochs (adamwr's restart_period).", default=None, validator=positive()
    )
    period_fraction: float | None = help_field(
        "Length of the first period as a fraction of the run.", default=None, validator=positive()
    )
    t_mult: float = help_field(
        "Each period is t_mult times the one before (a float; < 1 shrinks).", default=1.0, validator=positive()
    )
    rounding: str = help_field(
        "'exact': periods T * t_mult ** i. 'ceil' (adamwr, needs period_epochs): whole epochs, "
        "T_0 = ceil(T), T_(i+1) = ceil(T_i * t_mult).",
        default="exact",
        validator=one_of(ROUNDINGS),
    )
    peak_decay: float = help_field(
        "The peak is multiplied by this at each restart (adamwr's ReduceMaxLROnRestart ratio).",
        default=1.0,
        validator=positive(),
    )
    step_decay: float = help_field(
        "The peak is multiplied by step_decay ** k at update k (adamwr's ExpReduceMaxLROnIteration gamma).",
        default=1.0,
        validator=positive(),
    )
    warmup_epochs: float = help_field(
        "Epochs of linear warmup before the first period (with period_epochs).", default=0.0, validator=non_negative()
    )
    warmup_fraction: float = help_field(
        "Fraction of the run of linear warmup before the first period (with period_fraction).",
        default=0.0,
        validator=non_negative(),
    )
    warmup_start: float = help_field(
        "The multiplier the warmup starts from (0: from min_value); it rises to where the first period starts.",
        default=0.0,
        validator=in_range(0.0, 1.0),
    )

    def __attrs_post_init__(self) -> None:
        length = length_in(self.period_epochs, self.period_fraction, PERIOD_FIELDS)
        if length is None:
            raise ConfigError("give the first period's length: period_epochs or period_fraction", "period_epochs")
        in_epochs = length[1]
        if self.rounding == "ceil" and not in_epochs:
            raise ConfigError(
                "rounding 'ceil' rounds whole epochs: give period_epochs, not period_fraction", "rounding"
            )
        wrong = WARMUP_FIELDS[1] if in_epochs else WARMUP_FIELDS[0]
        if getattr(self, wrong):
            raise ConfigError(f"give the warmup in the period's unit ({WARMUP_FIELDS[0 if in_epochs else 1]})", wrong)

    @property
    def in_epochs(self) -> bool:
        """Whether lengths are in epochs (else fractions of the run)."""
        return self.period_epochs is not None

    @property
    def period(self) -> float:
        """The first period's length in its unit."""
        return float(self.period_epochs if self.period_epochs is not None else self.period_fraction or 0.0)

    @property
    def warmup(self) -> float:
        """The warmup's length in the period's unit."""
        return self.warmup_epochs if self.in_epochs else self.warmup_fraction


def make_periods(config: RestartsConfig) -> Periods:
    """The period sequence the config describes."""
    if config.rounding == "ceil":
        return CeilPeriods(config.period, config.t_mult)
    if config.t_mult == 1.0:
        return ConstantPeriods(config.period)
    return GeometricPeriods(config.period, config.t_mult)


class Restarts:
    """A shape over restart periods; see the module docstring for the formula.

    >>> # period_epochs 1, t_mult 2, cosine, 2 updates per epoch, relative to base 1:
    >>> # steps 0..6 -> 1, 0.5, 1, 0.854, 0.5, 0.146, 1
    """

    def __init__(
        self,
        periods: Periods,
        shape: Shape,
        value_range: ValueRange,
        timebase: Timebase,
        *,
        warmup: float = 0.0,
        warmup_start: float = 0.0,
    ) -> None:
        self.periods = periods
        self.shape = shape
        self.range = value_range
        self.timebase = timebase
        self.warmup = float(warmup)
        self.warmup_start = float(warmup_start)

    @property
    def relative(self) -> bool:
        """Whether each group's own value is the peak."""
        return self.range.relative

    def locate(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each step's period index, time elapsed in the period and the period's length (its unit).

        During the warmup the index is 0, the elapsed time negative.
        """
        x = self.timebase.position(steps) - self.warmup
        index, start, length = self.periods.locate(x.clamp(min=0.0) + self.timebase.tolerance)
        return index, x - start, length

    def multiplier(self, steps: torch.Tensor) -> torch.Tensor:
        """The multiplier eta at each step (before the range is applied)."""
        index, elapsed, length = self.locate(steps)
        envelope = self.shape.envelope(index, steps)
        eta = envelope * self.shape.profile((elapsed / length).clamp(0.0, 1.0))
        if self.warmup <= 0:
            return eta
        position = self.timebase.position(steps)
        target = envelope * self.shape.profile(torch.zeros_like(steps))
        ramp = self.warmup_start + (target - self.warmup_start) * (position / self.warmup)
        return torch.where(position + self.timebase.tolerance < self.warmup, ramp, eta)

    def period_epochs(self, steps: torch.Tensor) -> torch.Tensor:
        """The length in epochs of each step's period (T of the normalized weight decay)."""
        return torch.as_tensor(self.timebase.epochs(self.locate(steps)[2]), dtype=torch.float64)

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value at each step."""
        return self.range(self.multiplier(steps))


UNIT_CLOCK = Clock(steps_per_epoch=1, total_steps=1.0)


def build_shape(config: ScheduleConfig, context: ScheduleContext, extra: Envelope) -> Shape:
    """The shape a period repeats: a cyclical schedule's own, or any absolute schedule's curve."""
    path = join_path(context.path, "shape")
    if config.update_interval != "step":
        raise ConfigError("a shape is evaluated within each period: leave update_interval at 'step'", path)
    if isinstance(config.params, CycleConfig):
        _check_shape_options(config.params, path)
    if context.build is None:
        raise ConfigError("a shape is built through optiplug's schedule builder; none was given", path)
    built: Schedule = context.build(config, UNIT_CLOCK, path)
    if isinstance(built, Cyclic):
        return Shape(built.shape.profile, built.shape.envelope * extra)
    if getattr(built, "relative", False):
        raise ConfigError(
            f"schedule {config.name!r} is relative to the group's value; as a shape give it absolute values "
            "(its value at the period's progress is the multiplier)",
            path,
        )
    return Shape(built.values, extra)


def _check_shape_options(params: CycleConfig, path: str) -> None:
    defaults = CycleConfig()
    for name in ("min_value", "max_value", "cycle_epochs", "cycle_fraction"):
        if getattr(params, name) != getattr(defaults, name):
            raise ConfigError(
                f"set on restarts itself, not on its shape (got {getattr(params, name)!r})", join_path(path, name)
            )


def restarts_factory(config: RestartsConfig, context: ScheduleContext) -> Restarts:
    """Build ``restarts`` for a group whose own value is ``context.base``."""
    timebase = Timebase.choose(context.clock, config.in_epochs, context.path)
    periods = make_periods(config)
    _check_shrinking(periods, config, timebase, context.path)
    shape = build_shape(config.shape, context, Envelope(config.peak_decay, config.step_decay))
    value_range = ValueRange.of(config, context.base)
    return Restarts(periods, shape, value_range, timebase, warmup=config.warmup, warmup_start=config.warmup_start)


def _check_shrinking(periods: Periods, config: RestartsConfig, timebase: Timebase, path: str) -> None:
    if not isinstance(periods, GeometricPeriods) or periods.ratio >= 1:
        return
    total = timebase.clock.total_steps
    end = None if total is None else float(timebase.position(torch.tensor(float(total), dtype=torch.float64)))
    if end is None or end - config.warmup >= periods.limit():
        unit = "epochs" if config.in_epochs else "of the run"
        reach = "an open-ended run" if end is None else f"a run of {end:g} {unit}"
        raise ConfigError(
            f"t_mult {config.t_mult} < 1 shrinks the exact periods to nothing after {periods.limit():g} {unit}, "
            f"before the end of {reach}; use rounding 'ceil', a longer first period or t_mult >= 1",
            join_path(path, "t_mult"),
        )


def restarts_spec() -> ScheduleSpec:
    """The registry record of ``restarts``."""
    return ScheduleSpec(
        "restarts",
        RestartsConfig,
        restarts_factory,
        "a shape repeated over periods growing by t_mult (SGDR/adamwr), peak decay, warmup",
        relative=True,
    )
