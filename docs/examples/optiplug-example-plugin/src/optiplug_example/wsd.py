"""The warmup-stable-decay ("wsd", trapezoidal) schedule (Hu et al., 2024, MiniCPM; Hägele et al., 2024).

Over the run's progress ``w = step / total_steps``, with warmup fraction ``a`` and decay
fraction ``d``::

    w < a            start + (peak - start) * w / a            linear warmup
    a <= w < 1 - d   peak                                      stable
    w >= 1 - d       peak + (end - peak) * f(s),  s = (w - (1 - d)) / d

with ``f(s) = s`` (linear), ``(1 - cos(pi s)) / 2`` (cosine) or ``sqrt(s)`` (sqrt: the
"1 - sqrt" cooldown of Hägele et al.). Unlike a cosine, the peak holds for most of the
run, so a run can be extended (or branched into a short decay) from any checkpoint of
the stable phase.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

from optiplug.plugin import (
    ConfigError,
    ScalingContext,
    ScheduleConfig,
    ScheduleContext,
    evolve_params,
    help_field,
    in_range,
    one_of,
    progress,
)

SHAPES = ("linear", "cosine", "sqrt")


@attrs.frozen
class WSDConfig:
    """``wsd``: warm up to ``peak_value``, hold it, decay to ``end_value`` over the last ``decay_fraction``."""

    peak_value: float = help_field("The value of the stable phase.")
    warmup_fraction: float = help_field(
        "Fraction of the run spent warming up linearly from start_value.", default=0.05, validator=in_range(0, 1)
    )
    decay_fraction: float = help_field(
        "Fraction of the run, at its end, spent decaying to end_value.", default=0.2, validator=in_range(0, 1)
    )
    start_value: float = help_field("The value at the first update.", default=0.0)
    end_value: float = help_field("The value at the end of the run.", default=0.0)
    decay_shape: str = help_field(
        "How the decay falls: linear, cosine, or sqrt (1 - sqrt, fast at first).",
        default="linear",
        validator=one_of(SHAPES),
    )

    def __attrs_post_init__(self) -> None:
        if self.warmup_fraction + self.decay_fraction > 1:
            raise ConfigError(
                f"warmup_fraction + decay_fraction must be <= 1, got {self.warmup_fraction} + {self.decay_fraction}",
                "decay_fraction",
            )


class WSD:
    """The schedule of a :class:`WSDConfig`: a pure function of the update index.

    >>> # peak 1, warmup 0.25, decay 0.25 (linear) over 8 updates: 0, 0.5, 1, 1, 1, 1, 1, 0.5
    """

    def __init__(self, config: WSDConfig, context: ScheduleContext) -> None:
        self.config = config
        self.clock = context.clock
        self.path = context.path
        progress(torch.zeros(1, dtype=torch.float64), self.clock, self.path)  # the run's length is known

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value before each update in ``steps``."""
        c = self.config
        w = progress(steps, self.clock, self.path)
        out = torch.full_like(w, c.peak_value)
        if c.warmup_fraction > 0:
            ramp = c.start_value + (c.peak_value - c.start_value) * (w / c.warmup_fraction)
            out = torch.where(w < c.warmup_fraction, ramp, out)
        if c.decay_fraction > 0:
            decay_start = 1 - c.decay_fraction
            s = ((w - decay_start) / c.decay_fraction).clamp(0, 1)
            decay = c.peak_value + (c.end_value - c.peak_value) * _shape(c.decay_shape, s)
            out = torch.where(w >= decay_start, decay, out)
        return out


def _shape(name: str, s: torch.Tensor) -> torch.Tensor:
    if name == "cosine":
        return (1 - torch.cos(math.pi * s)) / 2
    if name == "sqrt":
        return torch.sqrt(s)
    return s


def rescale_wsd(config: ScheduleConfig, context: ScalingContext) -> Any:
    """Batch scaling: the peak becomes ``context.value``; start and end keep their ratio to the peak."""
    params: WSDConfig = config.params
    ratio = context.value / params.peak_value if params.peak_value else context.factor
    return evolve_params(
        config,
        peak_value=context.value,
        start_value=params.start_value * ratio,
        end_value=params.end_value * ratio,
    )
