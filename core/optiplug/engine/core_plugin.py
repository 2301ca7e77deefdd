"""The core's own plugin: the composite schedule, its scaling rule and the standard rule kinds.

It is registered through the ``optiplug`` entry-point group like every other plugin
(entry point ``core``).
"""

from __future__ import annotations

from optiplug.plugin_system.markers import hookimpl
from optiplug.plugin_system.records import RuleSpec, ScalingRule, ScheduleSpec


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The composite combinator."""
    from optiplug.engine.composite import composite_spec

    return [composite_spec()]


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """The composite's lr scaling rule (rescale parts; linear parts are warmups)."""
    from optiplug.engine.composite import composite_rule

    return [composite_rule()]


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """regex, name, module_type, module_path, ndim, norm, bias, all."""
    from optiplug.engine.rule_kinds import rule_specs

    return rule_specs()
