"""A schedule's values, computed a block of updates at a time and checked before use."""

from __future__ import annotations

import math

import attrs
import torch

from optiplug.errors import ConfigError
from optiplug.plugin_system.records import Schedule
from optiplug.recipe.numbers import FLOAT_LIMIT

BLOCK = 2048
CHECK_BLOCK = 65536
CHECK_LIMIT = 2**22
"""Runs up to this many updates are checked in full at the build; longer ones at both ends, the rest as they come."""


@attrs.frozen
class Bound:
    """The range of a group option: at least ``low`` (above it when ``low_open``), below ``high`` if given."""

    low: float = 0.0
    low_open: bool = False
    high: float | None = None

    def problem(self, name: str, value: float) -> str | None:
        """What is wrong with ``value`` as ``name`` (``"momentum must be below 1"``), or None."""
        if math.isnan(value):
            return None  # not finite: told apart by the caller
        if value < self.low or (self.low_open and value == self.low):
            return f"{name} must be {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None and value >= self.high:
            return f"{name} must be below {self.high:g}"
        return None

    def out_of_range(self, values: torch.Tensor) -> torch.Tensor:
        """A mask of the values outside the range."""
        bad = values <= self.low if self.low_open else values < self.low
        return bad | (values >= self.high) if self.high is not None else bad


BOUNDS: dict[str, Bound] = {
    "lr": Bound(),
    "weight_decay": Bound(),
    "momentum": Bound(high=1.0),
    "beta1": Bound(high=1.0),
    "betas": Bound(high=1.0),
    "eps": Bound(low_open=True),
}
"""The range of each option torch's optimizers share the meaning of; a schedule and a rule keep inside it.

``lr`` and ``weight_decay`` >= 0, ``momentum`` and Adam's betas in [0, 1) (a momentum of 1
or more never forgets a gradient, and grows without end above it), ``eps`` > 0.
"""


class OutOfBounds(ConfigError):
    """An option leaves its range (:data:`BOUNDS`): refused, or warned about where the dialect tolerates it."""


class ValueTable:
    """A schedule's values, computed one block of updates at a time and kept as floats.

    Every block is checked (:meth:`check_run` checks the whole run ahead): values must be
    finite and below 3e38 once multiplied by the largest ``scale`` a group applies, and
    inside the option's range (:data:`BOUNDS`), else :class:`OutOfBounds`.
    """

    def __init__(self, schedule: Schedule, block: int = BLOCK, path: str = "") -> None:
        self.schedule = schedule
        self.block = block
        self.path = path
        self.scale = 1.0
        self.option: str | None = None
        self.last_step: int | None = None
        self.checked_whole_run = False
        self._start = -1
        self._values: list[float] = []

    def __getitem__(self, step: int) -> float:
        start = step - step % self.block
        if start != self._start:
            steps = torch.arange(start, start + self.block, dtype=torch.float64)
            values = self.schedule.values(steps)
            if not self.checked_whole_run:
                # The scheduler never reads past the run's last update (it holds that value).
                self._check(values if self.last_step is None else values[: self.last_step + 1 - start], start)
            self._values = values.tolist()
            self._start = start
        return self._values[step - start]

    def invalidate(self) -> None:
        """Forget the block computed: a metric-driven schedule's values changed (a reported metric)."""
        self._start = -1

    def check_run(self, last_step: int, scale: float = 1.0, option: str | None = None) -> None:
        """Evaluate the run's updates ahead, so a bad value fails the build rather than update 9,136.

        Runs of up to ``CHECK_LIMIT`` updates are checked in full (a few milliseconds per
        million updates for most schedules); a longer one at both ends, the middle block by
        block as training reaches it. ``option`` names the range to keep (a key of
        :data:`BOUNDS`; None: finite values only).
        """
        self.scale, self.option, self.last_step = scale, option, last_step
        end = last_step + 1
        starts = range(0, end, CHECK_BLOCK) if end <= CHECK_LIMIT else (0, max(0, end - CHECK_BLOCK))
        for start in starts:
            steps = torch.arange(start, min(start + CHECK_BLOCK, end), dtype=torch.float64)
            self._check(self.schedule.values(steps), start)
        # Blocks read during training need no second check when the whole run was checked here.
        self.checked_whole_run = end <= CHECK_LIMIT

    def _check(self, values: torch.Tensor, start: int) -> None:
        """Refuse values a float32 parameter cannot take (NaN, inf, beyond 3e38), and those outside the range."""
        scaled = values * self.scale
        bad = ~(scaled.abs() <= FLOAT_LIMIT)
        error: type[ConfigError] = ConfigError
        expected = "values must be finite and below 3e38 in magnitude"
        bound = BOUNDS.get(self.option) if self.option is not None else None
        if bound is not None and not bool(bad.any()):
            bad = bound.out_of_range(scaled)
            if bool(bad.any()):
                value = scaled[int(bad.nonzero()[0, 0])].item()
                expected, error = bound.problem(str(self.option), value) or expected, OutOfBounds
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise error(f"the schedule gives {scaled[first].item()!r} at update {start + first}; {expected}", self.path)
