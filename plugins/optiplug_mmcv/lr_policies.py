"""MMCV 1.x LR policies (and MMSelfSup's StepFixCosineAnnealing) as optiplug schedules.

Each schedule's options are the hook's keyword arguments (``lr_config`` minus ``policy``),
warmup included. They are relative: each group's schedule starts from its own lr.
Cyclic and OneCycle live in :mod:`optiplug_mmcv.cyclic_policies`, CosineRestart in
:mod:`optiplug_mmcv.cosine_restart_policy`.

>>> # lr_config = dict(policy='CosineAnnealing', min_lr=0, by_epoch=False) is, in a recipe,
>>> # schedules: {lr: {name: mmcv_cosine_annealing, min_lr: 0, by_epoch: false}}
"""

from __future__ import annotations

from typing import Any

import attrs

from optiplug.plugin import ScheduleContext, ScheduleSpec, help_field, in_range
from optiplug_mmcv import policies
from optiplug_mmcv.updater import LrOptions, RunnerClock, Updater, updater


@attrs.frozen(kw_only=True)
class FixedLrConfig(LrOptions):
    """``policy='Fixed'``: the group's lr, warmed up if asked."""


@attrs.frozen(kw_only=True)
class StepLrConfig(LrOptions):
    """``policy='Step'``: the lr times gamma at every ``step`` epochs (iterations), or at each listed one."""

    step: Any = help_field(
        "Decay every `step` epochs (iterations without by_epoch), or at each listed epoch.",
        converter=policies.steps_list,
    )
    gamma: float = help_field("The decay factor.", default=0.1)
    min_lr: float | None = help_field("The lr never goes below this (absolute).", default=None)


@attrs.frozen(kw_only=True)
class ExpLrConfig(LrOptions):
    """``policy='Exp'``: ``lr * gamma ** p``."""

    gamma: float = help_field("The factor per epoch (per iteration without by_epoch).")


@attrs.frozen(kw_only=True)
class PolyLrConfig(LrOptions):
    """``policy='Poly'``: ``(lr - min_lr) * (1 - p / P) ** power + min_lr``."""

    power: float = help_field("The exponent.", default=1.0)
    min_lr: float = help_field("The lr at the end of the run (absolute).", default=0.0)


@attrs.frozen(kw_only=True)
class InvLrConfig(LrOptions):
    """``policy='Inv'``: ``lr * (1 + gamma * p) ** -power``."""

    gamma: float = help_field("The factor of the progress.")
    power: float = help_field("The exponent.", default=1.0)


@attrs.frozen(kw_only=True)
class AnnealingLrConfig(LrOptions):
    """``policy='CosineAnnealing'`` / ``'LinearAnnealing'``: from the lr to min_lr (or lr * min_lr_ratio)."""

    min_lr: float | None = help_field("The final lr, absolute (the same for every group).", default=None)
    min_lr_ratio: float | None = help_field("The final lr as a fraction of each group's lr.", default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        policies.exactly_one("min_lr", self.min_lr, "min_lr_ratio", self.min_lr_ratio)

    def target(self, base: float) -> float:
        """The final lr of a group whose lr is ``base``."""
        return policies.floor_target(base, self.min_lr, self.min_lr_ratio)


@attrs.frozen(kw_only=True)
class FlatCosineLrConfig(AnnealingLrConfig):
    """``policy='FlatCosineAnnealing'``: flat until ``start_percent`` of the run, then a cosine."""

    start_percent: float = help_field(
        "Where the cosine starts, as a fraction of the run, in [0, 1].", default=0.75, validator=in_range(0, 1)
    )


def _fixed(config: FixedLrConfig, context: ScheduleContext) -> Updater:
    return updater(policies.fixed(context.base), config, context)


def _step(config: StepLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.step(context.base, clock, config.step, config.gamma, config.min_lr), config, context)


def _exp(config: ExpLrConfig, context: ScheduleContext) -> Updater:
    return updater(policies.exp(context.base, RunnerClock.of(config, context), config.gamma), config, context)


def _poly(config: PolyLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.poly(context.base, clock, config.power, config.min_lr), config, context)


def _inv(config: InvLrConfig, context: ScheduleContext) -> Updater:
    return updater(
        policies.inv(context.base, RunnerClock.of(config, context), config.gamma, config.power), config, context
    )


def _cosine(config: AnnealingLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.cosine(context.base, clock, config.target(context.base)), config, context)


def _linear(config: AnnealingLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    return updater(policies.linear(context.base, clock, config.target(context.base)), config, context)


def _flat_cosine(config: FlatCosineLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    policy = policies.flat_cosine(context.base, clock, config.start_percent, config.target(context.base))
    return updater(policy, config, context)


def _step_fix_cosine(config: AnnealingLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    warmup = config.warmup_length(clock.iters_per_epoch) if config.warmup is not None else 0
    shift = warmup // clock.iters_per_epoch if config.by_epoch else warmup
    policy = policies.shifted_cosine(context.base, clock, config.target(context.base), shift)
    return updater(policy, config, context, ratio_free_linear=True)


STEP_FIX_DESCRIPTION = (
    "MMSelfSup's StepFixCosineAnnealing: the cosine starts after the warmup; its linear warmup starts at 0"
)


def schedule_specs() -> list[ScheduleSpec]:
    """The MMCV LR policies this plugin ships (all relative)."""
    return [
        ScheduleSpec("mmcv_fixed", FixedLrConfig, _fixed, "MMCV lr policy 'Fixed' (with warmup)", relative=True),
        ScheduleSpec("mmcv_step", StepLrConfig, _step, "MMCV lr policy 'Step'", relative=True),
        ScheduleSpec("mmcv_exp", ExpLrConfig, _exp, "MMCV lr policy 'Exp'", relative=True),
        ScheduleSpec("mmcv_poly", PolyLrConfig, _poly, "MMCV lr policy 'Poly'", relative=True),
        ScheduleSpec("mmcv_inv", InvLrConfig, _inv, "MMCV lr policy 'Inv'", relative=True),
        ScheduleSpec(
            "mmcv_cosine_annealing", AnnealingLrConfig, _cosine, "MMCV lr policy 'CosineAnnealing'", relative=True
        ),
        ScheduleSpec(
            "mmcv_linear_annealing", AnnealingLrConfig, _linear, "MMCV lr policy 'LinearAnnealing'", relative=True
        ),
        ScheduleSpec(
            "mmcv_flat_cosine_annealing",
            FlatCosineLrConfig,
            _flat_cosine,
            "MMCV lr policy 'FlatCosineAnnealing'",
            relative=True,
        ),
        ScheduleSpec(
            "mmcv_step_fix_cosine_annealing", AnnealingLrConfig, _step_fix_cosine, STEP_FIX_DESCRIPTION, relative=True
        ),
    ]
