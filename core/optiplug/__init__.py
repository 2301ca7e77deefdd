"""optiplug: optimizers, param groups and schedules for PyTorch from declarative configs.

Configs are canonical recipes, VISSL or MMCV; every feature is a plugin.

>>> built = optiplug.build("recipe.yaml", model, steps_per_epoch=500, num_epochs=100)
>>> for batch in loader:
...     built.step(loss_fn(model(batch)))
"""

from __future__ import annotations

from optiplug.build import build, to_recipe
from optiplug.built import Built, GroupSummary
from optiplug.config.recipe import (
    AccumulationConfig,
    ClipConfig,
    OptimizerConfig,
    Recipe,
    RuleConfig,
    RunConfig,
    ScalingConfig,
    ScheduleConfig,
    WrapperConfig,
)
from optiplug.errors import ConfigError, OptiplugError, PluginError, StateError
from optiplug.grouping import OptiplugWarning
from optiplug.plugins import hookimpl
from optiplug.records import (
    Clock,
    DialectContext,
    DialectSpec,
    OptimizerSpec,
    ParamInfo,
    RuleSpec,
    ScalingContext,
    ScalingRule,
    Schedule,
    ScheduleContext,
    ScheduleSpec,
    WrapperSpec,
)
from optiplug.registry import get_registry
from optiplug.scheduler import OptiplugScheduler
from optiplug.user import register_optimizer, register_schedule
from optiplug.version import __version__

__all__ = [
    "AccumulationConfig",
    "Built",
    "ClipConfig",
    "Clock",
    "ConfigError",
    "DialectContext",
    "DialectSpec",
    "GroupSummary",
    "OptimizerConfig",
    "OptimizerSpec",
    "OptiplugError",
    "OptiplugScheduler",
    "OptiplugWarning",
    "ParamInfo",
    "PluginError",
    "Recipe",
    "RuleConfig",
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
    "WrapperConfig",
    "WrapperSpec",
    "__version__",
    "build",
    "get_registry",
    "hookimpl",
    "register_optimizer",
    "register_schedule",
    "to_recipe",
]
