"""What every MMCV 1.x updater hook shares: the runner's counters, the warmup, the timing.

An MMCV ``LrUpdaterHook`` / ``MomentumUpdaterHook`` is turned into a pure function of the
iteration ``i`` (``runner.iter``, 0-based, counted over the whole run):

* the *regular* value comes from the policy, computed from ``p`` = ``runner.epoch``
  (``i // L``) when ``by_epoch``, else ``i``, and ``P`` = ``max_epochs`` or ``max_iters``;
* during the warmup (``i < W``) the warmup *multiplies* the regular lr (divides the
  regular momentum); from ``i = W`` on the regular value holds.

This equals the hooks' ``before_train_epoch`` / ``before_train_iter`` timing in both
modes: with ``by_epoch`` the epoch value is written at each epoch start and the warmup
is applied to it per iteration.

Schedules built here are ``relative``: each param group's base value (MMCV's
``initial_lr`` / ``initial_momentum``) is ``context.base``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, help_field, non_negative, one_of
from optiplug_mmcv.python_float_math import ANNEALERS, pow_of

WARMUPS = ("constant", "linear", "exp")
ANNEAL_STRATEGIES = tuple(ANNEALERS)
RUN_LENGTH_HINT = (
    "needs the length of the run: MMCV runner=dict(type='EpochBasedRunner', max_epochs=...) with "
    "build(steps_per_epoch=...), runner=dict(type='IterBasedRunner', max_iters=...), or build(num_epochs=...)"
)


def _optional_warmup(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        one_of(WARMUPS)(_instance, attribute, value)


@attrs.frozen(kw_only=True)
class UpdaterOptions:
    """The options of MMCV's updater-hook base classes (LR and momentum alike)."""

    by_epoch: bool = help_field("Change the value once per epoch (True) or every iteration (False).", default=True)
    warmup: str | None = help_field(
        "Warmup type: 'constant', 'linear', 'exp', or None (no warmup).", default=None, validator=_optional_warmup
    )
    warmup_iters: int = help_field(
        "Warmup length in iterations (in epochs with warmup_by_epoch).", default=0, validator=non_negative()
    )
    warmup_ratio: float = help_field("The warmup starts at warmup_ratio times the regular lr, in (0, 1].", default=0.1)

    def __attrs_post_init__(self) -> None:
        if self.warmup is None:
            return
        if self.warmup_iters <= 0:
            raise ConfigError(f"must be > 0 when warmup is {self.warmup!r}, got {self.warmup_iters!r}", "warmup_iters")
        if not 0 < self.warmup_ratio <= 1:
            raise ConfigError(
                f"must be in (0, 1] when warmup is {self.warmup!r}, got {self.warmup_ratio!r}", "warmup_ratio"
            )

    def warmup_length(self, iters_per_epoch: int) -> int:
        """W, the warmup's length in iterations."""
        return self.warmup_iters


@attrs.frozen(kw_only=True)
class LrOptions(UpdaterOptions):
    """``LrUpdaterHook(by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.1, warmup_by_epoch=False)``."""

    warmup_by_epoch: bool = help_field(
        "warmup_iters counts epochs (converted with the iterations per epoch); the warmup still moves every "
        "iteration. Default False, as in MMCV's code (MMSelfSup's tutorial says True).",
        default=False,
    )

    def warmup_length(self, iters_per_epoch: int) -> int:
        """W in iterations: ``warmup_iters * L`` with ``warmup_by_epoch``."""
        return self.warmup_iters * iters_per_epoch if self.warmup_by_epoch else self.warmup_iters


@attrs.frozen(kw_only=True)
class MomentumOptions(UpdaterOptions):
    """``MomentumUpdaterHook(by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.9)``: no warmup_by_epoch."""

    warmup_ratio: float = help_field(
        "The warmup starts at the regular momentum divided by warmup_ratio, in (0, 1].", default=0.9
    )


def _per_iteration(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value:
        raise ConfigError("this policy only supports by_epoch=False (as in MMCV)", attribute.name)


def per_iteration_only() -> Any:
    """The ``by_epoch`` field of policies MMCV runs per iteration only (Cyclic, OneCycle)."""
    return help_field("Must be False: MMCV runs this policy per iteration.", default=False, validator=_per_iteration)


def anneal_strategy() -> Any:
    """The ``anneal_strategy`` field of Cyclic and OneCycle: 'cos' or 'linear'."""
    return help_field(
        "'cos' or 'linear' annealing inside each phase.", default="cos", validator=one_of(ANNEAL_STRATEGIES)
    )


@attrs.frozen
class RunnerClock:
    """MMCV's runner counters seen from the iteration index.

    ``progress(i)`` is ``runner.epoch`` (``i // L``) when ``by_epoch``, else ``runner.iter``;
    ``max_progress`` is ``runner.max_epochs`` or ``runner.max_iters``.
    """

    iters_per_epoch: int
    max_iters: float | None
    by_epoch: bool
    path: str = ""

    @classmethod
    def of(cls, options: UpdaterOptions, context: ScheduleContext) -> RunnerClock:
        """The counters a hook with ``options`` reads, on ``context``'s clock."""
        clock = context.clock
        return cls(clock.steps_per_epoch, clock.total_steps, options.by_epoch, context.path)

    def progress(self, iters: torch.Tensor) -> torch.Tensor:
        """The epoch (by_epoch) or the iteration of each iteration index."""
        return torch.div(iters, self.iters_per_epoch, rounding_mode="floor") if self.by_epoch else iters

    @property
    def max_progress(self) -> float:
        """``max_epochs`` (by_epoch) or ``max_iters``."""
        return self.epochs if self.by_epoch else self.iterations

    @property
    def iterations(self) -> float:
        """``runner.max_iters``."""
        if self.max_iters is None:
            raise ConfigError(f"this policy {RUN_LENGTH_HINT}")
        return self.max_iters

    @property
    def epochs(self) -> float:
        """``runner.max_epochs``."""
        return self.iterations / self.iters_per_epoch


Policy = Callable[[torch.Tensor], torch.Tensor]


class Warmup:
    """MMCV's warmup factor, applied to the regular value of iterations ``i < W``.

    LR hooks multiply: constant ``r * ratio``; linear ``r * (1 - k)`` with
    ``k = (1 - i / W) * (1 - ratio)``; exp ``r * ratio ** (1 - i / W)``. Momentum hooks
    divide by the same factors. ``ratio_free_linear`` is MMSelfSup's StepFix linear
    warmup, ``k = 1 - i / W`` (it starts at 0 whatever the ratio).
    """

    def __init__(self, kind: str, length: int, ratio: float, *, divide: bool = False, ratio_free_linear: bool = False):
        self.kind = kind
        self.length = length
        self.ratio = ratio
        self.divide = divide
        self.ratio_free_linear = ratio_free_linear

    def factor(self, iters: torch.Tensor) -> torch.Tensor | float:
        """What the regular value is multiplied (LR) or divided (momentum) by."""
        if self.kind == "constant":
            return self.ratio
        if self.kind == "linear":
            k = 1 - iters / self.length if self.ratio_free_linear else (1 - iters / self.length) * (1 - self.ratio)
            return 1 - k
        return pow_of(self.ratio, 1 - iters / self.length)

    def apply(self, regular: torch.Tensor, iters: torch.Tensor) -> torch.Tensor:
        """The value of each iteration: warmed inside the warmup, regular after it."""
        factor = self.factor(iters)
        warmed = regular / factor if self.divide else regular * factor
        return torch.where(iters < self.length, warmed, regular)


class Updater:
    """One MMCV updater hook as a pure schedule of the iteration: policy, then warmup.

    ``values(steps)`` takes iteration indices (``runner.iter``); steps past the run's
    end are evaluated at the end (the adapter clamps there too).
    """

    relative = True

    def __init__(self, policy: Policy, warmup: Warmup | None, max_iters: float | None):
        self.policy = policy
        self.warmup = warmup
        self.max_iters = max_iters

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The hook's value before each iteration."""
        iters = steps.to(torch.float64)
        if self.max_iters is not None:
            iters = iters.clamp(max=self.max_iters)
        regular = self.policy(iters)
        return regular if self.warmup is None else self.warmup.apply(regular, iters)


def warmup_of(options: UpdaterOptions, context: ScheduleContext, **kinds: bool) -> Warmup | None:
    """The warmup ``options`` describe on ``context``'s clock (None without a warmup)."""
    if options.warmup is None:
        return None
    length = options.warmup_length(context.clock.steps_per_epoch)
    return Warmup(options.warmup, length, options.warmup_ratio, divide=isinstance(options, MomentumOptions), **kinds)


def updater(policy: Policy, options: UpdaterOptions, context: ScheduleContext, **kinds: bool) -> Updater:
    """The schedule of a hook with ``options`` whose regular value is ``policy``."""
    return Updater(policy, warmup_of(options, context, **kinds), context.clock.total_steps)
