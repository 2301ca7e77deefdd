"""optiplug_restarts: schedules with restarts, normalized weight decay, and the adamwr drop-in.

Schedules: ``restarts`` (any shape over periods growing by ``t_mult``, SGDR/adamwr),
``normalized_decay`` (weight decay following a schedule's multiplier, normalized by the
period) and VISSL's ``cosine_warm_restart``.

The adamwr drop-in (imported lazily)::

    from optiplug_restarts import CyclicLRWithRestarts, ReduceMaxLROnRestart, ExpReduceMaxLROnIteration
"""

from __future__ import annotations

from typing import Any

from optiplug.plugin import ScalingRule, ScheduleSpec, hookimpl

DROP_IN = ("CyclicLRWithRestarts", "ReduceMaxLROnRestart", "ExpReduceMaxLROnIteration")
__all__ = list(DROP_IN)


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """restarts, normalized_decay, cosine_warm_restart."""
    from optiplug_restarts import decay, restarts, warm_restart

    return [restarts.restarts_spec(), decay.normalized_decay_spec(), warm_restart.cosine_warm_restart_spec()]


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """How restarts and cosine_warm_restart move to a new peak lr."""
    from optiplug_restarts import scaling

    return [*scaling.scaling_rules()]


def __getattr__(name: str) -> Any:
    if name in DROP_IN:
        from optiplug_restarts import adamwr

        return getattr(adamwr, name)
    raise AttributeError(f"module 'optiplug_restarts' has no attribute {name!r}")
