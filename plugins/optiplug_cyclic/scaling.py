"""Batch-size lr scaling for schedules with a peak (this plugin's and ``restarts``).

The peak moves to the scaled value. An absolute schedule keeps its min/max ratio (as
VISSL's cosine rule keeps end/start); a relative one (no ``max_value``: each group's
value is its peak) becomes absolute with the scaled peak, like every fvcore schedule,
and keeps its ``min_value``.
"""

from __future__ import annotations

from optiplug.plugin import ConfigError, ScalingContext, ScalingRule, ScheduleConfig, evolve_params, join_path


def rescale_peak(config: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    """``config`` with its peak at ``context.value``."""
    params = config.params
    value = float(context.value)
    if params.max_value is None:
        return evolve_params(config, max_value=value)
    if params.max_value == 0:
        raise ConfigError(
            "cannot scale a schedule whose max_value is 0 (its min/max ratio is undefined)",
            join_path(context.path, "max_value"),
        )
    ratio = params.min_value / params.max_value
    return evolve_params(config, max_value=value, min_value=value * ratio)


def peak_rules(*names: str) -> list[ScalingRule]:
    """The peak rule for each schedule of ``names``."""
    return [ScalingRule(name, rescale_peak, "peak = scaled value (min/max ratio kept when absolute)") for name in names]


def scaling_rules() -> list[ScalingRule]:
    """The rules of this plugin's schedules."""
    return peak_rules("cyclic_cosine", "arccosine", "triangular", "triangular2", "exp_range")
