"""MMCV 1.x's ``CosineRestart`` lr policy (``CosineRestartLrUpdaterHook``) as a schedule.

Cosine cycles of ``periods[j]`` epochs (iterations without ``by_epoch``); cycle ``j``
starts at ``target + restart_weights[j] * (lr - target)`` and anneals to the target
(``min_lr``, or ``lr * min_lr_ratio``). Built on this plugin's updater machinery (warmup,
timing, MMCV's float arithmetic) and registered by ``optiplug_mmcv``.

MMCV raises mid-run when the run outlasts the periods; here that is a ConfigError when
the schedule is built (the run's length is known then).

>>> # periods=[10, 20], restart_weights=[1, 0.5], min_lr=1e-3, by_epoch=False, lr 0.1:
>>> # 0.1 at 0, 0.0034 at 9, 0.0505 at 10 (the half-height restart), 0.0013 at 29
"""

from __future__ import annotations

import itertools
import math

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, ScheduleSpec, help_field
from optiplug_mmcv import policies
from optiplug_mmcv.python_float_math import annealing_cos
from optiplug_mmcv.updater import LrOptions, Policy, RunnerClock, Updater, updater


def _periods(_instance: object, attribute: attrs.Attribute[list[int]], value: list[int]) -> None:
    if not value or any(p <= 0 for p in value):
        raise ConfigError(f"must be a non-empty list of whole numbers > 0, got {value!r}", attribute.name)


def _weights(_instance: object, attribute: attrs.Attribute[list[float]], value: list[float]) -> None:
    if any(not math.isfinite(w) for w in value):
        raise ConfigError(f"must be finite numbers, got {value!r}", attribute.name)


@attrs.frozen(kw_only=True)
class CosineRestartLrConfig(LrOptions):
    """``policy='CosineRestart'``: cosine cycles restarting at a weight of the lr."""

    periods: list[int] = help_field(
        "The length of each cycle, in epochs (iterations without by_epoch).", validator=_periods
    )
    restart_weights: list[float] = help_field(
        "Each cycle's height as a fraction of the lr (one per period).", factory=lambda: [1.0], validator=_weights
    )
    min_lr: float | None = help_field("The floor every cycle anneals to, absolute.", default=None)
    min_lr_ratio: float | None = help_field("The floor as a fraction of each group's lr.", default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        policies.exactly_one("min_lr", self.min_lr, "min_lr_ratio", self.min_lr_ratio)
        if len(self.restart_weights) != len(self.periods):
            raise ConfigError(
                f"needs one weight per period ({len(self.periods)}), got {len(self.restart_weights)}", "restart_weights"
            )


def cosine_restart(base: float, clock: RunnerClock, config: CosineRestartLrConfig) -> Policy:
    """The hook's regular lr: ``annealing_cos(base, target, min((p - c_{j-1}) / periods[j], 1), weights[j])``."""
    ends = list(itertools.accumulate(config.periods))
    if clock.max_iters is not None and ends[-1] < clock.max_progress:
        unit = "epochs" if clock.by_epoch else "iterations"
        raise ConfigError(
            f"the periods cover {ends[-1]} {unit} but the run lasts {clock.max_progress:g} (MMCV raises past the end)",
            "periods",
        )
    target = policies.floor_target(base, config.min_lr, config.min_lr_ratio)
    boundaries = torch.tensor(ends, dtype=torch.float64)
    starts = torch.tensor([0, *ends[:-1]], dtype=torch.float64)
    lengths = torch.tensor(config.periods, dtype=torch.float64)
    weights = torch.tensor(config.restart_weights, dtype=torch.float64)
    last = len(ends) - 1

    def policy(iters: torch.Tensor) -> torch.Tensor:
        progress = clock.progress(iters)
        cycle = torch.bucketize(progress, boundaries, right=True).clamp(max=last)
        alpha = ((progress - starts[cycle]) / lengths[cycle]).clamp(max=1)
        return annealing_cos(base, target, alpha, weights[cycle])

    return policy


def _cosine_restart(config: CosineRestartLrConfig, context: ScheduleContext) -> Updater:
    return updater(cosine_restart(context.base, RunnerClock.of(config, context), config), config, context)


def schedule_specs() -> list[ScheduleSpec]:
    """MMCV's CosineRestart lr policy (relative)."""
    return [
        ScheduleSpec(
            "mmcv_cosine_restart",
            CosineRestartLrConfig,
            _cosine_restart,
            "MMCV lr policy 'CosineRestart'",
            relative=True,
        )
    ]
