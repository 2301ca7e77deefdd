"""How each schedule of this plugin moves to a new peak lr (VISSL's ``get_scaled_lr_scheduler``)."""

from __future__ import annotations

from optiplug import ConfigError, ScalingContext, ScalingRule, ScheduleConfig
from optiplug.plugin import evolve_params


def _cosine(config: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    start, end = config.params.start_value, config.params.end_value
    if start == 0:
        raise ConfigError("cannot scale a cosine that starts at 0 (its end/start ratio is undefined)", context.path)
    ratio = end / start
    return evolve_params(config, start_value=float(context.value), end_value=float(context.value * ratio))


def _steps(config: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    values = config.params.values
    gamma = round(values[1] / values[0], 6) if len(values) >= 2 and values[0] != 0 else 1.0
    scaled = [round(float(context.value * gamma**i), 8) for i in range(len(values))]
    return evolve_params(config, values=scaled)


def _set(field: str):  # type: ignore[no-untyped-def]
    def rule(config: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
        return evolve_params(config, **{field: float(context.value)})

    return rule


def scaling_rules() -> list[ScalingRule]:
    """One rule per schedule of this plugin."""
    return [
        ScalingRule("cosine", _cosine, "keep end/start; start at the scaled value"),
        ScalingRule("multistep", _steps, "geometric from the scaled value with the first ratio (rounded as VISSL)"),
        ScalingRule("step", _steps, "geometric from the scaled value with the first ratio (rounded as VISSL)"),
        ScalingRule("step_with_fixed_gamma", _set("base_value"), "base_value = scaled value"),
        ScalingRule("linear", _set("end_value"), "end_value = scaled value"),
        ScalingRule("inverse_sqrt", _set("start_value"), "start_value = scaled value"),
        ScalingRule("constant", _set("value"), "value = scaled value"),
        ScalingRule("polynomial", _set("base_value"), "base_value = scaled value (VISSL cannot scale it)"),
        ScalingRule("exponential", _set("start_value"), "start_value = scaled value"),
    ]
