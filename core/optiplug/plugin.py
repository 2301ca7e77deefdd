"""The public plugin-author API: everything a plugin may import from optiplug.

A plugin, first-party or third-party, imports from here (or the user API in
:mod:`optiplug`) and from nowhere else in optiplug; the modules behind it are private
and may move. What is here is stable:

- the hook marker :data:`hookimpl` (the hooks themselves are documented in
  :mod:`optiplug.plugin_system.hookspecs` and on the docs' reference page);
- every record a hook returns and the values they talk in (``OptimizerSpec``,
  ``ScheduleSpec``, ``RuleSpec``, ``ScalingRule``, ``WrapperSpec``, ``DialectSpec``,
  ``Clock``, ``ScheduleContext``, ``ScalingContext``, ``DialectContext``, ``ParamInfo``);
- the recipe types a dialect translates into, and :func:`structure_config` to check a
  mapping into one of them;
- attrs field helpers with checked values (:func:`help_field`, :func:`positive`, ...);
- the helpers a schedule needs (:func:`progress`, :func:`as_steps`, :class:`EpochHeld`,
  :func:`build_schedule`, :class:`ValueTable`), and those of a metric-driven one
  (:class:`MetricState`, :func:`read_metric`, :func:`metric_number`, :func:`metric_state_of`);
- the errors and their message helpers (:func:`did_you_mean`, :func:`join_path`).

A plugin module is hook functions marked with :data:`hookimpl`, each returning records
(the hooks, each with an example: :mod:`optiplug.plugin_system.hookspecs`)::

    from optiplug.plugin import OptimizerSpec, hookimpl

    @hookimpl
    def optiplug_optimizers():
        return [OptimizerSpec(name="lion", factory=Lion, description="Lion (Chen et al., 2023)")]
"""

from __future__ import annotations

from optiplug.engine.loss_scaling import SCALER_ARGUMENTS, grad_scaler_config
from optiplug.engine.optimizer_options import optimizer_arguments
from optiplug.engine.run_figures import Batch, distributed_world
from optiplug.engine.scaling import rescale
from optiplug.engine.schedules import (
    WHERE_EPSILON,
    EpochHeld,
    as_steps,
    build_schedule,
    evaluate,
    metric_number,
    metric_state_of,
    progress,
    read_metric,
)
from optiplug.engine.structuring import evolve_params, structure_config, unstructure_config
from optiplug.engine.value_table import ValueTable
from optiplug.engine.wrapping import optimizer_chain
from optiplug.errors import (
    ConfigError,
    OptiplugError,
    OptiplugWarning,
    PluginError,
    StateError,
    closest,
    did_you_mean,
    join_path,
)
from optiplug.plugin_system.host import PluginHost, use_host
from optiplug.plugin_system.markers import hookimpl
from optiplug.plugin_system.records import (
    RECORD_TYPES,
    CatalogueView,
    Clock,
    DialectContext,
    DialectSpec,
    MetricState,
    OptimizerSpec,
    ParamInfo,
    RecordKind,
    RegistryView,
    RuleMatcher,
    RuleSpec,
    ScalingContext,
    ScalingRule,
    Schedule,
    ScheduleContext,
    ScheduleSpec,
    WrapperSpec,
)
from optiplug.recipe.loaders import load as load_config
from optiplug.recipe.model import (
    AccumulationConfig,
    ClipConfig,
    FreezeConfig,
    LossScaleConfig,
    OptimizerConfig,
    Recipe,
    RuleConfig,
    RunConfig,
    ScalingConfig,
    ScheduleConfig,
    WrapperConfig,
)
from optiplug.recipe.numbers import (
    FLOAT_LIMIT,
    INT_LIMIT,
    count_problem,
    is_count,
    is_number,
    number_problem,
    parse_float,
)
from optiplug.recipe.strict_converter import NormType
from optiplug.recipe.validators import finite_list, help_field, in_range, increasing, non_negative, one_of, positive

__all__ = [
    "FLOAT_LIMIT",
    "INT_LIMIT",
    "RECORD_TYPES",
    "SCALER_ARGUMENTS",
    "WHERE_EPSILON",
    "AccumulationConfig",
    "Batch",
    "CatalogueView",
    "ClipConfig",
    "Clock",
    "ConfigError",
    "DialectContext",
    "DialectSpec",
    "EpochHeld",
    "FreezeConfig",
    "LossScaleConfig",
    "MetricState",
    "NormType",
    "OptimizerConfig",
    "OptimizerSpec",
    "OptiplugError",
    "OptiplugWarning",
    "ParamInfo",
    "PluginError",
    "PluginHost",
    "Recipe",
    "RecordKind",
    "RegistryView",
    "RuleConfig",
    "RuleMatcher",
    "RuleSpec",
    "RunConfig",
    "ScalingConfig",
    "ScalingContext",
    "ScalingRule",
    "Schedule",
    "ScheduleConfig",
    "ScheduleContext",
    "ScheduleSpec",
    "StateError",
    "ValueTable",
    "WrapperConfig",
    "WrapperSpec",
    "as_steps",
    "build_schedule",
    "closest",
    "count_problem",
    "did_you_mean",
    "distributed_world",
    "evaluate",
    "evolve_params",
    "finite_list",
    "grad_scaler_config",
    "help_field",
    "hookimpl",
    "in_range",
    "increasing",
    "is_count",
    "is_number",
    "join_path",
    "load_config",
    "metric_number",
    "metric_state_of",
    "non_negative",
    "number_problem",
    "one_of",
    "optimizer_arguments",
    "optimizer_chain",
    "parse_float",
    "positive",
    "progress",
    "read_metric",
    "rescale",
    "structure_config",
    "unstructure_config",
    "use_host",
]
