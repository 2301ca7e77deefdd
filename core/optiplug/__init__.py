"""optiplug: optimizers, param groups and schedules for PyTorch from declarative configs.

Configs are canonical recipes, VISSL or MMCV; every feature is a plugin.

>>> built = optiplug.build("recipe.yaml", model, steps_per_epoch=500, num_epochs=100)
>>> for batch in loader:
...     built.step(loss_fn(model(batch)))
"""

from __future__ import annotations

from optiplug.engine.build import build
from optiplug.engine.built_result import Built, GroupSummary
from optiplug.engine.dialects import to_recipe
from optiplug.engine.torch_scheduler import OptiplugScheduler
from optiplug.errors import ConfigError, OptiplugError, OptiplugWarning, PluginError, StateError
from optiplug.plugin_system.host import get_registry
from optiplug.plugin_system.markers import hookimpl
from optiplug.plugin_system.records import (
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
from optiplug.plugin_system.registration import register_optimizer, register_schedule
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
from optiplug.tooling.find_lr import find_lr
from optiplug.version import __version__

__all__ = [
    "AccumulationConfig",
    "Built",
    "ClipConfig",
    "Clock",
    "ConfigError",
    "DialectContext",
    "DialectSpec",
    "FreezeConfig",
    "GroupSummary",
    "LossScaleConfig",
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
    "find_lr",
    "get_registry",
    "hookimpl",
    "register_optimizer",
    "register_schedule",
    "to_recipe",
]
