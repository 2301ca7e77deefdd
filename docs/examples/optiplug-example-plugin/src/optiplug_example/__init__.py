"""optiplug_example: an optiplug plugin from outside the project, as a third party writes one.

It provides the ``lion`` optimizer, the ``wsd`` (warmup-stable-decay) schedule and the
lr scaling rule of ``wsd``. The hooks only return records; the modules holding the
optimizer and the schedule are imported inside them, so loading the plugin stays cheap.
"""

from __future__ import annotations

import optiplug

__version__ = "0.1.0"


@optiplug.hookimpl
def optiplug_optimizers() -> list[optiplug.OptimizerSpec]:
    """Lion (Chen et al., 2023)."""
    from optiplug_example.lion import Lion

    return [optiplug.OptimizerSpec(name="lion", factory=Lion, description="Lion: sign of the interpolated momentum")]


@optiplug.hookimpl
def optiplug_schedules() -> list[optiplug.ScheduleSpec]:
    """The warmup-stable-decay schedule."""
    from optiplug_example.wsd import WSD, WSDConfig

    return [optiplug.ScheduleSpec("wsd", WSDConfig, WSD, "linear warmup, constant peak, then a short decay")]


@optiplug.hookimpl
def optiplug_scaling_rules() -> list[optiplug.ScalingRule]:
    """``lr_scaling`` moves the peak (and the start and end in proportion)."""
    from optiplug_example.wsd import rescale_wsd

    return [optiplug.ScalingRule("wsd", rescale_wsd, "scale start, peak and end by the same factor")]
