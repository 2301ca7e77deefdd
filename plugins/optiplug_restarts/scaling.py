"""The lr scaling rules of this plugin's schedules."""

from __future__ import annotations

from optiplug.plugin import ScalingRule
from optiplug_cyclic.scaling import peak_rules
from optiplug_restarts.warm_restart import cosine_warm_restart_rule


def scaling_rules() -> list[ScalingRule]:
    """``restarts`` moves its peak; ``cosine_warm_restart`` follows VISSL's cosine rule."""
    return [*peak_rules("restarts"), cosine_warm_restart_rule()]
