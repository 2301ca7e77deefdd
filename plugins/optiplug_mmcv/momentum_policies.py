"""MMCV 1.x momentum policies (``momentum_config``) as optiplug schedules.

They drive ``momentum``, or ``betas[0]`` for Adam-type optimizers (the core writes
beta1 when a ``momentum`` schedule meets a group without ``momentum``). Their warmup
*divides* the regular momentum (MMCV >= 1.4.4); ``warmup_ratio`` defaults to 0.9.
Cyclic and OneCycle live in :mod:`optiplug_mmcv.cyclic_policies`.
"""

from __future__ import annotations

from typing import Any

import attrs

from optiplug.plugin import ScheduleContext, ScheduleSpec, help_field
from optiplug_mmcv import policies
from optiplug_mmcv.updater import MomentumOptions, RunnerClock, Updater, updater


@attrs.frozen(kw_only=True)
class StepMomentumConfig(MomentumOptions):
    """``policy='Step'``: the momentum times gamma at every ``step`` epochs (iterations), or at each listed one."""

    step: Any = help_field(
        "Decay every `step` epochs (iterations without by_epoch), or at each listed epoch.",
        converter=policies.steps_list,
    )
    gamma: float = help_field("The decay factor.", default=0.5)
    min_momentum: float | None = help_field("The momentum never goes below this.", default=None)


@attrs.frozen(kw_only=True)
class AnnealingMomentumConfig(MomentumOptions):
    """``policy='CosineAnnealing'`` / ``'LinearAnnealing'``: to min_momentum (or momentum * min_momentum_ratio)."""

    min_momentum: float | None = help_field("The final momentum, absolute.", default=None)
    min_momentum_ratio: float | None = help_field("The final momentum as a fraction of each group's.", default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        policies.exactly_one("min_momentum", self.min_momentum, "min_momentum_ratio", self.min_momentum_ratio)

    def target(self, base: float) -> float:
        """The final momentum of a group whose momentum is ``base``."""
        return policies.floor_target(base, self.min_momentum, self.min_momentum_ratio)


def _step(config: StepMomentumConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.step(context.base, clock, config.step, config.gamma, config.min_momentum), config, context)


def _cosine(config: AnnealingMomentumConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.cosine(context.base, clock, config.target(context.base)), config, context)


def _linear(config: AnnealingMomentumConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.linear(context.base, clock, config.target(context.base)), config, context)


def schedule_specs() -> list[ScheduleSpec]:
    """The MMCV momentum policies this plugin ships (all relative)."""
    return [
        ScheduleSpec("mmcv_momentum_step", StepMomentumConfig, _step, "MMCV momentum policy 'Step'", relative=True),
        ScheduleSpec(
            "mmcv_momentum_cosine_annealing",
            AnnealingMomentumConfig,
            _cosine,
            "MMCV momentum policy 'CosineAnnealing'",
            relative=True,
        ),
        ScheduleSpec(
            "mmcv_momentum_linear_annealing",
            AnnealingMomentumConfig,
            _linear,
            "MMCV momentum policy 'LinearAnnealing'",
            relative=True,
        ),
    ]
