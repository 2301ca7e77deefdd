"""fvcore's schedules (and VISSL's inverse_sqrt) as pure, vectorized functions of the update.

Each is a function of the run's progress ``w = step / total_steps`` with fvcore's exact
formulas and operation order; unlike fvcore, none raises near or at the end of the run:
Step and MultiStep clamp to their last value. ``reduce_on_plateau`` (torch's
ReduceLROnPlateau, driven by reported metrics) lives in :mod:`optiplug_torch.plateau`.
"""

from __future__ import annotations

import math

import attrs
import torch

from optiplug import ConfigError, ScheduleContext, ScheduleSpec
from optiplug.plugin import (
    WHERE_EPSILON,
    finite_list,
    help_field,
    in_range,
    increasing,
    non_negative,
    positive,
    progress,
)
from optiplug_torch.plateau import ReduceOnPlateau, ReduceOnPlateauConfig


class _Progress:
    """Base: a schedule of the progress w = step / total_steps."""

    def __init__(self, context: ScheduleContext) -> None:
        self.clock = context.clock
        self.path = context.path
        progress(torch.zeros(1, dtype=torch.float64), self.clock, self.path)

    def where(self, steps: torch.Tensor) -> torch.Tensor:
        """The progress of each step."""
        return progress(steps, self.clock, self.path)


@attrs.frozen
class ConstantConfig:
    """``constant``: the same value throughout."""

    value: float = help_field("The value.")


class Constant:
    """``value`` at every step."""

    def __init__(self, config: ConstantConfig, context: ScheduleContext) -> None:
        self.value = config.value

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """``value`` everywhere."""
        return torch.full_like(steps, self.value, dtype=torch.float64)


@attrs.frozen
class StartEndConfig:
    """``linear`` / ``cosine``: from start_value to end_value over the run."""

    start_value: float = help_field("Value at the start.")
    end_value: float = help_field("Value at the end.")


class Linear(_Progress):
    """``end * w + start * (1 - w)`` (fvcore's operation order).

    >>> # start 0.0, end 1.0 over 10 steps: 0.0, 0.1, ..., 0.9
    """

    def __init__(self, config: StartEndConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        self.start, self.end = config.start_value, config.end_value

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The linear ramp at each step."""
        w = self.where(steps)
        return self.end * w + self.start * (1 - w)


class Cosine(_Progress):
    """``end + 0.5 * (start - end) * (1 + cos(pi * w))``: half a cosine wave (no restarts).

    >>> # 0.1 -> 0 over 10 steps: 0.1, 0.0976, 0.0905, 0.0794, 0.0655, 0.05, ...
    """

    def __init__(self, config: StartEndConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        self.start, self.end = config.start_value, config.end_value

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The cosine at each step."""
        w = self.where(steps)
        return self.end + 0.5 * (self.start - self.end) * (1 + torch.cos(math.pi * w))


@attrs.frozen
class ExponentialConfig:
    """``exponential``: start_value * decay ** w."""

    start_value: float = help_field("Value at the start.")
    decay: float = help_field("The factor reached at the end of the run.", validator=positive())


class Exponential(_Progress):
    """``start * decay ** w``.

    >>> # 2.0 with decay 0.1 over 10 steps: 2.0, 1.5887, 1.2619, 1.0024, ...
    """

    def __init__(self, config: ExponentialConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        self.start, self.decay = config.start_value, config.decay

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The exponential at each step."""
        return self.start * torch.pow(torch.tensor(self.decay, dtype=torch.float64), self.where(steps))


@attrs.frozen
class PolynomialConfig:
    """``polynomial``: base_value * (1 - w) ** power."""

    base_value: float = help_field("Value at the start.")
    power: float = help_field("Exponent of the decay (1 is linear).", validator=non_negative())


class Polynomial(_Progress):
    """``base * (1 - w) ** power``: reaches 0 at the end of the run."""

    def __init__(self, config: PolynomialConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        self.base, self.power = config.base_value, config.power

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The polynomial decay at each step."""
        return self.base * torch.pow((1 - self.where(steps)).clamp(min=0.0), self.power)


@attrs.frozen
class StepConfig:
    """``step``: the run split into len(values) equal parts."""

    values: list[float] = help_field("One value per equal part of the run.", validator=finite_list(min_length=1))
    num_updates: int | None = help_field(
        "Validated only (fvcore); the parts are always equal.", default=None, validator=positive()
    )


class Step(_Progress):
    """``values[int((w + 1e-6) * len(values))]``, the last value through the end."""

    def __init__(self, config: StepConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        self.table = torch.tensor(config.values, dtype=torch.float64)

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The part's value at each step."""
        n = len(self.table)
        index = torch.floor((self.where(steps) + WHERE_EPSILON) * n).clamp(0, n - 1).long()
        return self.table[index]


@attrs.frozen
class StepWithFixedGammaConfig:
    """``step_with_fixed_gamma``: base_value, times gamma num_decays times, in equal parts."""

    base_value: float = help_field("Value of the first part.", validator=positive())
    num_decays: int = help_field(
        "How many times the value is multiplied by gamma (at most 100,000).", validator=in_range(1, 100_000)
    )
    gamma: float = help_field("The factor of each decay.", validator=positive())
    num_updates: int | None = help_field("Validated only (fvcore).", default=None, validator=positive())


def _fixed_gamma(config: StepWithFixedGammaConfig, context: ScheduleContext) -> Step:
    values = [config.base_value]
    for _ in range(config.num_decays):
        values.append(values[-1] * config.gamma)
    return Step(StepConfig(values), context)


@attrs.frozen
class MultiStepConfig:
    """``multistep``: values changing at milestones (in epochs unless num_updates says otherwise)."""

    values: list[float] = help_field("The value in each range.", validator=finite_list(min_length=1))
    milestones: list[int] | None = help_field(
        "Where each new value starts, in units of num_updates (epochs by default); default: evenly spaced.",
        default=None,
        validator=attrs.validators.optional(increasing()),
    )
    num_updates: int | None = help_field(
        "The length of the run in milestone units; default: the run's epochs.", default=None, validator=positive()
    )


class MultiStep(_Progress):
    """``values[bisect_right(milestones, int((w + 1e-6) * num_updates))]`` (fvcore)."""

    def __init__(self, config: MultiStepConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        epochs = context.clock.num_epochs
        units = config.num_updates or (round(epochs) if epochs is not None else None)
        milestones = self._milestones(config, units)
        self.units = float(units) if units is not None else float(milestones[-1])
        self.milestones = torch.tensor(milestones[: len(config.values) - 1], dtype=torch.float64)
        self.table = torch.tensor(config.values, dtype=torch.float64)

    @staticmethod
    def _milestones(config: MultiStepConfig, units: int | None) -> list[int]:
        n = len(config.values)
        if units is not None and units < n:
            raise ConfigError(
                f"num_updates ({units}; epochs by default) must be at least the number of values ({n})", "num_updates"
            )
        if config.milestones is None:
            if units is None:
                raise ConfigError("give milestones or num_updates", "milestones")
            width = math.ceil(units / float(n))
            return [width * (i + 1) for i in range(n - 1)]
        milestones = list(config.milestones)
        if len(milestones) != n - 1:
            raise ConfigError(f"needs {n - 1} milestone(s) for {n} values, got {milestones}", "milestones")
        late = [m for m in milestones if units is not None and m >= units]
        if late:
            raise ConfigError(
                f"milestones must be < num_updates ({units}; epochs by default), got {late}", "milestones"
            )
        if milestones and milestones[0] <= 0:
            raise ConfigError(f"milestones must be > 0, got {milestones}", "milestones")
        return milestones

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The range's value at each step."""
        k = torch.floor((self.where(steps) + WHERE_EPSILON) * self.units)
        return self.table[torch.bucketize(k, self.milestones, right=True)]


@attrs.frozen
class InverseSqrtConfig:
    """``inverse_sqrt`` (VISSL): start_value * sqrt(W / w), meant to follow a warmup of length W."""

    start_value: float = help_field("The value at w = warmup_interval_length.")
    warmup_interval_length: float = help_field(
        "W, the fraction of the run of the warmup it follows (0: no warmup).", default=0.0, validator=non_negative()
    )


class InverseSqrt(_Progress):
    """``decay * w ** -0.5`` with ``decay = start * sqrt(W)`` (``decay`` at w = 0)."""

    def __init__(self, config: InverseSqrtConfig, context: ScheduleContext) -> None:
        super().__init__(context)
        w0 = config.warmup_interval_length
        self.decay = config.start_value * math.sqrt(w0) if w0 > 0 else config.start_value

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The inverse square-root decay at each step."""
        w = self.where(steps)
        safe = torch.where(w > 0, w, torch.ones_like(w))
        return torch.where(w > 0, self.decay * torch.pow(safe, -0.5), torch.full_like(w, self.decay))


def schedule_specs() -> list[ScheduleSpec]:
    """The records of this plugin's schedules."""
    return [
        ScheduleSpec("constant", ConstantConfig, Constant, "the same value throughout"),
        ScheduleSpec("linear", StartEndConfig, Linear, "linear from start_value to end_value"),
        ScheduleSpec("cosine", StartEndConfig, Cosine, "half cosine from start_value to end_value"),
        ScheduleSpec("exponential", ExponentialConfig, Exponential, "start_value * decay ** progress"),
        ScheduleSpec("polynomial", PolynomialConfig, Polynomial, "base_value * (1 - progress) ** power"),
        ScheduleSpec("step", StepConfig, Step, "values over equal parts of the run"),
        ScheduleSpec("multistep", MultiStepConfig, MultiStep, "values changing at milestones (epochs)"),
        ScheduleSpec(
            "step_with_fixed_gamma",
            StepWithFixedGammaConfig,
            _fixed_gamma,
            "base_value decayed by gamma in equal parts",
        ),
        ScheduleSpec("inverse_sqrt", InverseSqrtConfig, InverseSqrt, "VISSL's inverse square-root decay"),
        ScheduleSpec(
            "reduce_on_plateau",
            ReduceOnPlateauConfig,
            ReduceOnPlateau,
            "torch's ReduceLROnPlateau: the group's value reduced when a reported metric stops improving",
            relative=True,
        ),
    ]
