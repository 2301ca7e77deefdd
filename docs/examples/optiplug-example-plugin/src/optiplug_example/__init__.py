"""optiplug_example: an optiplug plugin from outside the project, as a third party writes one.

It provides the ``lion`` optimizer, the ``trapezoid`` (warmup-stable-decay) schedule and the
lr scaling rule of ``trapezoid``. (optiplug's own ``wsd`` is first-party, plugin ``optiplug_wsd``;
the example's schedule has a name of its own, as two plugins cannot register one name.)
The hooks only return records; the modules holding the optimizer and the schedule are
imported inside them, so loading the plugin stays cheap.
Like every plugin, it imports from :mod:`optiplug.plugin` only: the rest of optiplug is
private and may move.
"""

from __future__ import annotations

from optiplug.plugin import OptimizerSpec, ScalingRule, ScheduleSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """Lion (Chen et al., 2023)."""
    from optiplug_example.lion import Lion

    return [OptimizerSpec(name="lion", factory=Lion, description="Lion: sign of the interpolated momentum")]


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The warmup-stable-decay schedule."""
    from optiplug_example.wsd import WSD, WSDConfig

    return [ScheduleSpec("trapezoid", WSDConfig, WSD, "linear warmup, constant peak, then a short decay")]


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """``lr_scaling`` moves the peak (and the start and end in proportion)."""
    from optiplug_example.wsd import rescale_wsd

    return [ScalingRule("trapezoid", rescale_wsd, "scale start, peak and end by the same factor")]
