"""optiplug_cyclic: cyclical schedules (CLR and adamwr's policies) and the shapes ``restarts`` repeats.

Schedules: ``cyclic_cosine``, ``arccosine``, ``triangular``, ``triangular2``,
``exp_range`` (see :mod:`optiplug_cyclic.schedules`), each with an lr scaling rule.
"""

from __future__ import annotations

from optiplug.plugin import ScalingRule, ScheduleSpec, hookimpl


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The cyclical schedules."""
    from optiplug_cyclic import schedules

    return [*schedules.schedule_specs()]


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """How each cyclical schedule moves to a new peak lr."""
    from optiplug_cyclic import scaling

    return [*scaling.scaling_rules()]
