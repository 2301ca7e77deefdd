"""From a multiplier to a value: ``min_value + (peak - min_value) * eta``, relative or absolute.

The schedules of this plugin and of ``optiplug_restarts`` compute a multiplier ``eta``
(the shape times its envelope) and map it to the option's value here. By default the
peak is the param group's own value (relative, as adamwr's per-group
``lr = min_lr + (initial_lr - min_lr) * eta``); with ``max_value`` the schedule is
absolute (fvcore style) and optiplug multiplies its value by the group's ``lr_mult``.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
import torch

from optiplug.plugin import help_field

Number = TypeVar("Number", torch.Tensor, float)


@attrs.frozen
class RangeOptions:
    """The two ends of a cycle: the config fields every cyclic and restart schedule shares."""

    min_value: float = help_field(
        "The value at multiplier 0, the floor (adamwr's min_lr). With max_value unset it is not "
        "scaled by lr_mult: every group shares it.",
        default=0.0,
    )
    max_value: float | None = help_field(
        "The value at multiplier 1. Unset (default): each param group's own value is the peak "
        "(relative, adamwr style). Set: the schedule is absolute (fvcore style; lr_mult scales it). "
        "Below min_value the cycle runs upside down (momentum against the lr).",
        default=None,
    )


@attrs.frozen
class ValueRange:
    """Maps a multiplier to a value between ``minimum`` and ``peak``.

    >>> # ValueRange(1e-7, 0.1, relative=True)(eta) = 1e-7 + (0.1 - 1e-7) * eta
    """

    minimum: float
    peak: float
    relative: bool

    @classmethod
    def of(cls, options: RangeOptions, base: float) -> ValueRange:
        """The range of ``options`` for a group whose own value is ``base``."""
        if options.max_value is None:
            return cls(options.min_value, base, relative=True)
        return cls(options.min_value, options.max_value, relative=False)

    def __call__(self, eta: Number) -> Number:
        """The value at each multiplier (a tensor, or one float)."""
        return self.minimum + (self.peak - self.minimum) * eta
