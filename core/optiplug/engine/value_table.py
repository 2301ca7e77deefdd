"""A schedule's values, computed a block of updates at a time and checked before use."""

from __future__ import annotations

import torch

from optiplug.errors import ConfigError
from optiplug.plugin_system.records import Schedule
from optiplug.recipe.numbers import FLOAT_LIMIT

BLOCK = 2048
CHECK_BLOCK = 65536
CHECK_LIMIT = 2**22
"""Runs up to this many updates are checked in full at the build; longer ones at both ends, the rest as they come."""
NON_NEGATIVE = ("lr", "weight_decay", "momentum")
"""Options torch refuses below 0 (as an optimizer argument); a schedule may not take them there."""


class ValueTable:
    """A schedule's values, computed one block of updates at a time and kept as floats.

    Every block is checked (:meth:`check_run` checks the whole run ahead): values must be
    finite and below 3e38 once multiplied by the largest ``scale`` a group applies, and
    not below 0 for the options in ``NON_NEGATIVE``.
    """

    def __init__(self, schedule: Schedule, block: int = BLOCK, path: str = "") -> None:
        self.schedule = schedule
        self.block = block
        self.path = path
        self.scale = 1.0
        self.non_negative: str | None = None
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

    def check_run(self, last_step: int, scale: float = 1.0, non_negative: str | None = None) -> None:
        """Evaluate the run's updates ahead, so a bad value fails the build rather than update 9,136.

        Runs of up to ``CHECK_LIMIT`` updates are checked in full (a few milliseconds per
        million updates for most schedules); a longer one at both ends, the middle block by
        block as training reaches it.
        """
        self.scale, self.non_negative, self.last_step = scale, non_negative, last_step
        end = last_step + 1
        starts = range(0, end, CHECK_BLOCK) if end <= CHECK_LIMIT else (0, max(0, end - CHECK_BLOCK))
        for start in starts:
            steps = torch.arange(start, min(start + CHECK_BLOCK, end), dtype=torch.float64)
            self._check(self.schedule.values(steps), start)
        # Blocks read during training need no second check when the whole run was checked here.
        self.checked_whole_run = end <= CHECK_LIMIT

    def _check(self, values: torch.Tensor, start: int) -> None:
        """Refuse values a float32 parameter cannot take (NaN, inf, beyond 3e38), and negative ones where refused."""
        scaled = values * self.scale
        bad = ~(scaled.abs() <= FLOAT_LIMIT)
        expected = "values must be finite and below 3e38 in magnitude"
        if self.non_negative is not None and not bool(bad.any()):
            bad = scaled < 0
            expected = f"{self.non_negative} must be >= 0"
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise ConfigError(
                f"the schedule gives {scaled[first].item()!r} at update {start + first}; {expected}", self.path
            )
