"""VISSL's ``cosine_warm_restart`` (``CosineWarmRestartScheduler``), on the run's progress w.

Absolute (fvcore style): the values are the config's, times the group's ``lr_mult``.
With s = start_value, e = end_value, L = restart_interval_length:

* restart points: half waves ``[0] + arange(L, 1.0, L)``, full waves
  ``[0] + arange(L, 1.0, 2L)`` (numpy's arange: ``ceil((1 - L) / step)`` points
  ``L + i * ((L + step) - L)``);
* peak of restart i: ``s * lr_multiplier ** i``; adaptive: the plain cosine's value at the
  restart point (half) or at ``L`` past it (full);
* value: ``e + 0.5 * (peak_i - e) * (1 + cos(pi u))`` (VISSL's operation order) with ``u = (w mod L) / L`` (half) or
  ``u = w / L`` (full: the cosine's own period 2L makes the wave), ``i`` the last restart
  point at or before w.
"""

from __future__ import annotations

import math

import attrs
import torch

from optiplug.plugin import (
    ConfigError,
    ScalingContext,
    ScalingRule,
    ScheduleConfig,
    ScheduleContext,
    ScheduleSpec,
    evolve_params,
    help_field,
    non_negative,
    one_of,
    positive,
    progress,
)

WAVES = ("half", "full")


@attrs.frozen
class CosineWarmRestartConfig:
    """Options of ``cosine_warm_restart`` (VISSL's names and defaults)."""

    start_value: float = help_field("s, the first peak.")
    end_value: float = help_field("e, the value each wave falls to.")
    restart_interval_length: float = help_field(
        "L, the fraction of the run between restarts (half waves) or half of it (full waves).", validator=positive()
    )
    wave_type: str = help_field(
        "'half': each interval is a half cosine from the peak to e. 'full': a whole cosine wave "
        "over 2L, the peak switching at the trough.",
        default="half",
        validator=one_of(WAVES),
    )
    lr_multiplier: float = help_field("Peak factor per restart (not adaptive).", default=1.0, validator=non_negative())
    is_adaptive: bool = help_field(
        "Peaks follow the plain cosine from s to e at the restart points instead of lr_multiplier.", default=False
    )


def restart_points(length: float, wave: str) -> list[float]:
    """``[0] + numpy.arange(L, 1.0, step)`` with numpy's arithmetic, step L (half) or 2L (full)."""
    step = length if wave == "half" else 2 * length
    count = max(0, math.ceil((1.0 - length) / step))
    delta = (length + step) - length
    return [0.0] + [length + i * delta for i in range(count)]


def peaks(config: CosineWarmRestartConfig, points: list[float]) -> list[float]:
    """The peak of each restart."""
    s, e, length = config.start_value, config.end_value, config.restart_interval_length
    if not config.is_adaptive:
        return [s * config.lr_multiplier**i for i in range(len(points))]
    shift = 0.0 if config.wave_type == "half" else length
    desired = [e + 0.5 * (s - e) * (1 + math.cos(math.pi * (shift + point))) for point in points]
    # VISSL goes through the ratio desired / s (and fails for s = 0); kept for equal rounding.
    return [s * (d / s) if s != 0 else d for d in desired]


class CosineWarmRestart:
    """VISSL's warm-restart cosine; see the module docstring.

    >>> # s 0.15, e 0.00015, half, L 0.5, lr_multiplier 0.5: w = 0, .25, .5, .75 ->
    >>> # 0.15, 0.075075, 0.075, 0.037575
    """

    relative = False

    def __init__(self, config: CosineWarmRestartConfig, context: ScheduleContext) -> None:
        self.clock, self.path = context.clock, context.path
        progress(torch.zeros(1, dtype=torch.float64), self.clock, self.path)
        self.length = config.restart_interval_length
        self.half = config.wave_type == "half"
        self.end = config.end_value
        points = restart_points(self.length, config.wave_type)
        self.points = torch.tensor(points, dtype=torch.float64)
        self.peaks = torch.tensor(peaks(config, points), dtype=torch.float64)

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value at each step's progress."""
        w = progress(steps, self.clock, self.path)
        index = (torch.bucketize(w, self.points, right=True) - 1).clamp(min=0)
        u = torch.fmod(w, self.length) / self.length if self.half else w / self.length
        return self.end + 0.5 * (self.peaks[index] - self.end) * (1 + torch.cos(math.pi * u))


def rescale_cosine_warm_restart(config: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    """VISSL's rule for names containing 'cosine': keep end/start, start at the scaled value."""
    start, end = config.params.start_value, config.params.end_value
    if start == 0:
        raise ConfigError(
            "cannot scale a cosine_warm_restart that starts at 0 (its end/start ratio is undefined)", context.path
        )
    ratio = end / start
    return evolve_params(config, start_value=float(context.value), end_value=float(context.value * ratio))


def cosine_warm_restart_spec() -> ScheduleSpec:
    """The registry record."""
    return ScheduleSpec(
        "cosine_warm_restart",
        CosineWarmRestartConfig,
        CosineWarmRestart,
        "VISSL's cosine with warm restarts every restart_interval_length of the run (half or full waves)",
    )


def cosine_warm_restart_rule() -> ScalingRule:
    """Its lr scaling rule."""
    return ScalingRule("cosine_warm_restart", rescale_cosine_warm_restart, "keep end/start; start at the scaled value")
