"""Two lr policies OpenMMLab 2.x frameworks register themselves, as schedules.

* ``YOLOX`` (MMDetection 2.x ``YOLOXLrUpdaterHook``, ``mmdet/core/hook/yolox_lrupdater_hook.py``):
  with ``q = p + 1`` (``p`` the epoch or the iteration), ``last = L * num_last_epochs``
  (iterations, in both modes) and ``W`` the warmup in iterations, the regular lr is
  ``target`` once ``q >= P - last``, else ``annealing_cos(lr, target, (q - W) / (P - W - last))``.
  Its warmup, whatever ``warmup`` names, multiplies the regular lr by
  ``warmup_ratio * ((i + 1) / W) ** 2``.
* ``CosineAnnealingCooldown`` (MMClassification 0.x ``CosineAnnealingCooldownLrUpdaterHook``,
  ``mmcls/core/hook/lr_updater.py``): ``target * cool_down_ratio`` once
  ``p > P - cool_down_time``, else ``annealing_cos(lr, target, p / (P - cool_down_time))``;
  MMCV's usual warmup.

``target`` is ``min_lr``, or ``lr * min_lr_ratio``. Built on this plugin's updater machinery
(timing, MMCV's float arithmetic) and registered by ``optiplug_mmcv``. Where the hooks
divide by zero mid-run, the schedule is refused when built (a ConfigError).

>>> # lr_config = dict(policy='YOLOX', warmup='exp', by_epoch=False, warmup_by_epoch=True,
>>> #                  warmup_ratio=1, warmup_iters=5, num_last_epochs=15, min_lr_ratio=0.05)
"""

from __future__ import annotations

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, ScheduleSpec, help_field, non_negative
from optiplug_mmcv.lr_policies import AnnealingLrConfig
from optiplug_mmcv.python_float_math import annealing_cos
from optiplug_mmcv.updater import Policy, RunnerClock, Updater, Warmup, updater


@attrs.frozen(kw_only=True)
class YoloxLrConfig(AnnealingLrConfig):
    """``policy='YOLOX'``: a cosine after a quadratic warmup, the floor held over the last epochs."""

    num_last_epochs: int = help_field(
        "The last epochs at the floor lr (counted in epochs even without by_epoch).", validator=non_negative()
    )


@attrs.frozen(kw_only=True)
class CooldownLrConfig(AnnealingLrConfig):
    """``policy='CosineAnnealingCooldown'``: a cosine, then the floor times cool_down_ratio."""

    cool_down_time: int = help_field(
        "The cooldown's length in epochs (iterations without by_epoch).", default=10, validator=non_negative()
    )
    cool_down_ratio: float = help_field("The cooldown lr as a fraction of the floor.", default=0.1)


class QuadraticWarmup(Warmup):
    """YOLOX's warmup: the regular lr times ``warmup_ratio * ((i + 1) / W) ** 2``, for any warmup kind."""

    def factor(self, iters: torch.Tensor) -> torch.Tensor | float:
        """``warmup_ratio * ((i + 1) / W) ** 2``, in MMDetection's operation order."""
        fraction = (iters + 1) / float(self.length)
        return self.ratio * (fraction * fraction)


def yolox(base: float, clock: RunnerClock, target: float, warmup: int, num_last_epochs: int) -> Policy:
    """YOLOX's regular lr (see the module docstring); ``warmup`` is W in iterations."""
    last = clock.iters_per_epoch * num_last_epochs
    total = clock.max_progress
    span = total - warmup - last
    unit = "epochs" if clock.by_epoch else "iterations"
    if span == 0 and warmup > 0:
        raise ConfigError(
            f"the warmup ({warmup} iterations) and the last {last} iterations fill the run of {total:g} {unit}: "
            "MMDetection divides by zero",
            "num_last_epochs",
        )

    def policy(iters: torch.Tensor) -> torch.Tensor:
        progress = clock.progress(iters) + 1
        annealed = annealing_cos(base, target, (progress - warmup) / (span or 1.0))
        return torch.where(progress >= total - last, torch.full_like(annealed, target), annealed)

    return policy


def cooldown(base: float, clock: RunnerClock, target: float, time: int, ratio: float) -> Policy:
    """CosineAnnealingCooldown's regular lr (see the module docstring)."""
    total = clock.max_progress
    span = total - time
    if span == 0:
        raise ConfigError(
            f"is the whole run ({total:g} {'epochs' if clock.by_epoch else 'iterations'}): "
            "MMClassification divides by zero",
            "cool_down_time",
        )

    def policy(iters: torch.Tensor) -> torch.Tensor:
        progress = clock.progress(iters)
        annealed = annealing_cos(base, target, progress / span)
        return torch.where(progress > span, torch.full_like(annealed, target * ratio), annealed)

    return policy


def _yolox(config: YoloxLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    length = config.warmup_length(clock.iters_per_epoch)
    policy = yolox(context.base, clock, config.target(context.base), length, config.num_last_epochs)
    warmup = QuadraticWarmup("yolox", length, config.warmup_ratio) if config.warmup is not None else None
    return Updater(policy, warmup, context.clock.total_steps)


def _cooldown(config: CooldownLrConfig, context: ScheduleContext) -> Updater:
    clock = RunnerClock.of(config, context)
    policy = cooldown(context.base, clock, config.target(context.base), config.cool_down_time, config.cool_down_ratio)
    return updater(policy, config, context)


def schedule_specs() -> list[ScheduleSpec]:
    """MMDetection's YOLOX and MMClassification's CosineAnnealingCooldown lr policies (relative)."""
    return [
        ScheduleSpec("mmcv_yolox", YoloxLrConfig, _yolox, "MMDetection 2.x lr policy 'YOLOX'", relative=True),
        ScheduleSpec(
            "mmcv_cosine_annealing_cooldown",
            CooldownLrConfig,
            _cooldown,
            "MMClassification 0.x lr policy 'CosineAnnealingCooldown'",
            relative=True,
        ),
    ]
