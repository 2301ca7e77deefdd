"""``wsd``: warmup, stable, decay.

Hägele et al., 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations"; Hu et al., 2024, MiniCPM.

Over a run of ``T`` updates, with ``W = warmup * T`` and the cooldown starting at
``S = T - decay * T`` (or at ``decay_start``, a branch), the value before update ``n`` is::

    n < W        value * n / W                    linear warmup from 0
    W <= n < S   value                            stable
    n >= S       value * f((n - S) / (T - S))     cooldown to 0

with ``f(s) = 1 - s`` (linear), ``(1 + cos(pi s)) / 2`` (cosine) or ``1 - sqrt(s)``
(1-sqrt, the paper's best). ``W`` and ``S`` are counted in updates (a fraction of the
run that lands within 1e-9 of a whole update is that update), so the cooldown starts
exactly at its update, with ``f(0) = 1``.
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
    join_path,
    non_negative,
    one_of,
    positive,
)

SHAPES = ("linear", "cosine", "1-sqrt")
DEFAULT_DECAY = 0.2
SNAP = 1e-9  # a boundary this close to a whole update is that update


@attrs.frozen
class WSDConfig:
    """``wsd``: warm up from 0 to ``value``, hold it, cool down to 0 over the last ``decay`` of the run."""

    value: float = help_field("The value of the stable phase (the peak).", validator=positive())
    warmup: float = help_field(
        "Fraction of the run spent warming up linearly from 0.", default=0.0, validator=in_range(0.0, 1.0)
    )
    decay: float | None = help_field(
        f"Fraction of the run, at its end, spent cooling down to 0 (default {DEFAULT_DECAY}). Not with decay_start.",
        default=None,
        validator=in_range(0.0, 1.0),
    )
    decay_shape: str = help_field(
        "How the cooldown falls: linear (1 - s), cosine ((1 + cos(pi s)) / 2) or 1-sqrt (1 - sqrt(s)).",
        default="1-sqrt",
        validator=one_of(SHAPES),
    )
    decay_start: int | None = help_field(
        "The update at which the cooldown starts, lasting to the end of the run: a cooldown branched from "
        "a checkpoint (optiplug_wsd.cooldown_recipe writes it). Not with decay.",
        default=None,
        validator=non_negative(),
    )

    def __attrs_post_init__(self) -> None:
        if self.decay is not None and self.decay_start is not None:
            raise ConfigError(
                f"give decay (a fraction of the run) or decay_start (an update), not both "
                f"(got {self.decay!r} and {self.decay_start!r})",
                "decay_start",
            )
        if self.warmup + self.cooldown > 1:
            raise ConfigError(f"warmup + decay must be <= 1, got {self.warmup} + {self.cooldown}", "decay")

    @property
    def cooldown(self) -> float:
        """The cooldown's fraction of the run (0 when it starts at ``decay_start``: checked against the clock)."""
        if self.decay_start is not None:
            return 0.0
        return DEFAULT_DECAY if self.decay is None else self.decay


def snapped(updates: float) -> float:
    """``updates``, or the whole update it is within :data:`SNAP` of."""
    whole = round(updates)
    return float(whole) if abs(updates - whole) <= SNAP else updates


def shape(name: str, s: torch.Tensor) -> torch.Tensor:
    """The cooldown's multiplier at progress ``s`` in [0, 1] through it."""
    if name == "cosine":
        return 0.5 * (1.0 + torch.cos(math.pi * s))
    if name == "1-sqrt":
        return 1.0 - torch.sqrt(s)
    return 1.0 - s


class WSD:
    """The schedule of a :class:`WSDConfig`, in updates.

    >>> # value 1, warmup 0.25, decay 0.5 (linear) over 8 updates: 0, 0.5, 1, 1, 1, 0.75, 0.5, 0.25
    """

    def __init__(self, config: WSDConfig, context: ScheduleContext) -> None:
        total = context.clock.total_steps
        if total is None:
            raise ConfigError("wsd needs the length of the run (num_epochs or total_steps)", context.path)
        self.config = config
        self.total = float(total)
        self.warmup_end = snapped(config.warmup * self.total)
        if config.decay_start is None:
            self.decay_start = snapped(self.total - config.cooldown * self.total)
        else:
            self.decay_start = float(config.decay_start)
            if self.decay_start >= self.total:
                raise ConfigError(
                    f"decay_start must be an update of the run (< {self.total:g} updates), got {config.decay_start}",
                    join_path(context.path, "decay_start"),
                )
            if self.decay_start < self.warmup_end:
                raise ConfigError(
                    f"decay_start {config.decay_start} is inside the warmup, which ends at update {self.warmup_end:g}",
                    join_path(context.path, "decay_start"),
                )

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value before each update in ``steps``."""
        c = self.config
        out = torch.full_like(steps, c.value, dtype=torch.float64)
        if self.warmup_end > 0:
            out = torch.where(steps < self.warmup_end, c.value * (steps / self.warmup_end), out)
        length = self.total - self.decay_start
        if length > 0:
            s = ((steps - self.decay_start) / length).clamp(0.0, 1.0)
            out = torch.where(steps >= self.decay_start, c.value * shape(c.decay_shape, s), out)
        return out


def branch_wsd(config: WSDConfig, at: int, context: ScheduleContext) -> WSDConfig:
    """``resume="branch"``: the cooldown starts at update ``at`` and lasts to the end of the run in ``context``.

    The warmup is cut to end by ``at`` at the latest (the updates before ``at`` are done:
    only the value from ``at`` on matters, the stable value). From ``at`` on the values
    are :func:`optiplug_wsd.cooldown_recipe`'s branch at ``at`` of the same length.
    """
    total = context.clock.total_steps
    if config.decay_start is not None:
        raise ConfigError(
            f"this wsd cools down from update {config.decay_start} already; a branch starts from the original run",
            join_path(context.path, "decay_start"),
        )
    if total is None or not 0 <= at < total:
        length = "is open-ended" if total is None else f"has {total:g} updates"
        raise ConfigError(f"the cooldown cannot start at update {at}: the run {length}", context.path)
    warmup = min(config.warmup, at / float(total))
    return attrs.evolve(config, warmup=warmup, decay=None, decay_start=at)


def rescale_wsd(config: ScheduleConfig, context: ScalingContext) -> Any:
    """Batch scaling: ``value`` becomes the scaled value (warmup and cooldown keep their lengths)."""
    return evolve_params(config, value=float(context.value))
