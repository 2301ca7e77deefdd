"""``normalized_decay``: weight decay that follows a schedule's multiplier, normalized by the period.

Loshchilov & Hutter ("Decoupled Weight Decay Regularization") and adamwr:

    weight_decay_t = lambda_norm * eta_t * sqrt(b / (B * T))

lambda_norm is each group's own weight_decay (the schedule is relative), eta_t the
multiplier of the ``schedule`` it follows (normally the lr's ``restarts``: the same
config, so eta_t and T match the lr's), b the batch size, B the samples per epoch and T
the current period in epochs (the whole run for a schedule without restarts). Pair it
with an optimizer that decays by ``weight_decay`` alone (``adamwr``, paper convention).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from optiplug.plugin import (
    Clock,
    ConfigError,
    EpochHeld,
    Schedule,
    ScheduleConfig,
    ScheduleContext,
    ScheduleSpec,
    help_field,
    join_path,
    positive,
)
from optiplug_cyclic.ranges import Number

Curve = Callable[[torch.Tensor], torch.Tensor]


@attrs.frozen
class NormalizedDecayConfig:
    """Options of ``normalized_decay``."""

    schedule: ScheduleConfig = help_field(
        "The schedule whose multiplier eta_t (and period T) the decay follows: normally a copy of the lr's "
        "restarts schedule. Cyclical and restart schedules give their multiplier; any other absolute "
        "schedule's value is used as eta_t."
    )
    batch_size: int | None = help_field(
        "b, samples per update. Unset with epoch_size unset: b / B = 1 / steps_per_epoch.",
        default=None,
        validator=positive(),
    )
    epoch_size: int | None = help_field(
        "B, samples per epoch (adamwr's epoch_size).", default=None, validator=positive()
    )

    def __attrs_post_init__(self) -> None:
        if (self.batch_size is None) != (self.epoch_size is None):
            given, missing = ("batch_size", "epoch_size") if self.epoch_size is None else ("epoch_size", "batch_size")
            raise ConfigError(f"{given} needs {missing} too (b / B is their ratio), or leave both unset", missing)


class NormalizedDecay:
    """``base * eta_t * sqrt(b / (B * T))`` at each step.

    >>> # b=2, B=8, T=2 epochs: the normalizer is sqrt(2 / 16) = 0.3536; after a restart
    >>> # to T=4 it is 0.25 (adamwr's verified numbers)
    """

    relative = True

    def __init__(self, eta: Curve, period_epochs: Curve, base: float, batch_size: float, epoch_size: float) -> None:
        self.eta = eta
        self.period_epochs = period_epochs
        self.base = float(base)
        self.batch_size = float(batch_size)
        self.epoch_size = float(epoch_size)

    def value_of(self, eta: Number, period_epochs: Number) -> Number:
        """The decay for a multiplier and a period in epochs (tensors, or one float each)."""
        return self.base * eta * (self.batch_size / (self.epoch_size * period_epochs)) ** 0.5

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The decay at each step."""
        return self.value_of(self.eta(steps), self.period_epochs(steps))


def follow(source: Schedule, clock: Clock, path: str) -> tuple[Curve, Curve]:
    """The multiplier and the period (epochs) of ``source`` as functions of the step."""
    if isinstance(source, EpochHeld):
        eta, period = follow(source.inner, clock, path)
        spe = source.steps_per_epoch

        def held(curve: Curve) -> Curve:
            return lambda steps: curve(torch.floor(steps / spe) * spe)

        return held(eta), held(period)
    return _multiplier(source, path), _period(source, clock, path)


def _multiplier(source: Schedule, path: str) -> Curve:
    multiplier: Curve | None = getattr(source, "multiplier", None)
    if multiplier is not None:
        return multiplier
    if getattr(source, "relative", False):
        raise ConfigError(
            "follows a schedule relative to the group's value, whose multiplier is unknown; "
            "give a cyclical or restarts schedule, or absolute values",
            path,
        )
    return source.values


def _period(source: Schedule, clock: Clock, path: str) -> Curve:
    period: Curve | None = getattr(source, "period_epochs", None)
    if period is not None:
        return period
    run = clock.num_epochs
    if run is None:
        raise ConfigError("T is the run's length in epochs for a schedule without periods: give num_epochs", path)
    return _constant(run)


def _constant(value: float) -> Curve:
    return lambda steps: torch.full_like(steps, value)


def normalized_decay_factory(config: NormalizedDecayConfig, context: ScheduleContext) -> NormalizedDecay:
    """Build ``normalized_decay`` for a group whose weight_decay is ``context.base``."""
    path = join_path(context.path, "schedule")
    if context.build is None:
        raise ConfigError("normalized_decay builds its schedule through optiplug's builder; none was given", path)
    eta, period = follow(context.build(config.schedule, context.clock, path), context.clock, path)
    batch, epoch = config.batch_size, config.epoch_size
    if batch is None or epoch is None:
        batch, epoch = 1, context.clock.steps_per_epoch
    return NormalizedDecay(eta, period, context.base, batch, epoch)


def normalized_decay_spec() -> ScheduleSpec:
    """The registry record of ``normalized_decay``."""
    return ScheduleSpec(
        "normalized_decay",
        NormalizedDecayConfig,
        normalized_decay_factory,
        "weight decay = group value * eta_t * sqrt(b / (B * T)) (Loshchilov & Hutter; adamwr)",
        relative=True,
    )
