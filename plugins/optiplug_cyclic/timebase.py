"""Where a cycle is measured: in epochs (``steps / steps_per_epoch``) or in fractions of the run.

Cycle lengths are written in one of two units; a :class:`Timebase` turns update indices
into a position in that unit and a length in that unit into epochs (what adamwr's
normalized weight decay needs).
"""

from __future__ import annotations

import attrs
import torch

from optiplug.plugin import Clock, ConfigError, progress

# A boundary hands over to the next cycle this much (in updates) early, so that rounding
# of a position computed in floating point never puts a cycle's first update in the cycle
# before (the role fvcore's WHERE_EPSILON plays for progress).
STEP_TOLERANCE = 1e-6


@attrs.frozen
class Timebase:
    """Positions in epochs (``per_unit = steps_per_epoch``) or in run fractions (``per_unit = total``)."""

    clock: Clock
    in_epochs: bool
    path: str = ""

    @classmethod
    def choose(cls, clock: Clock, in_epochs: bool, path: str = "") -> Timebase:
        """The timebase; the run-fraction one fails here if the run's length is unknown."""
        if not in_epochs and clock.total_steps is None:
            raise ConfigError("a length given as a fraction of the run needs the run's length (num_epochs)", path)
        return cls(clock, in_epochs, path)

    def position(self, steps: torch.Tensor) -> torch.Tensor:
        """Each update's position: epochs done (float64 ``k / steps_per_epoch``) or the run's progress."""
        if self.in_epochs:
            return steps / self.clock.steps_per_epoch
        return progress(steps, self.clock, self.path)

    @property
    def tolerance(self) -> float:
        """:data:`STEP_TOLERANCE` in this unit."""
        return STEP_TOLERANCE / self.updates_per_unit

    @property
    def updates_per_unit(self) -> float:
        """Updates in one unit (an epoch, or the whole run)."""
        return float(self.clock.steps_per_epoch if self.in_epochs else self.clock.total_steps or 0.0)

    def epochs(self, length: torch.Tensor | float) -> torch.Tensor | float:
        """A length in this unit, in epochs."""
        return length * (self.updates_per_unit / self.clock.steps_per_epoch)


def length_in(epochs: float | None, fraction: float | None, names: tuple[str, str]) -> tuple[float, bool] | None:
    """``(length, in_epochs)`` from a pair of exclusive fields (None when neither is set)."""
    if epochs is not None and fraction is not None:
        raise ConfigError(f"give {names[0]} or {names[1]}, not both (got {epochs!r} and {fraction!r})", names[0])
    if epochs is not None:
        return epochs, True
    if fraction is not None:
        return fraction, False
    return None
