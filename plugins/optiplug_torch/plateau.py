"""``reduce_on_plateau``: torch's ``ReduceLROnPlateau``, the one schedule driven by a reported metric.

The decisions (:class:`PlateauDecisions`) are torch's, step for step: the best metric so
far, the bad reports since, the cooldown, and the update index of every reduction. The
values stay a function of the update index and of those decisions: a group starts at its
own value (the schedule is relative, as torch's reads the group's lr) and each reduction
taken after update k multiplies it by ``factor`` from update k on, floored at
``min_value``, and skipped when it would change the value by ``eps`` or less (torch's
``_reduce_lr``). Everything is kept in the scheduler's ``state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from optiplug.plugin import (
    ConfigError,
    ScheduleContext,
    StateError,
    help_field,
    in_range,
    non_negative,
    one_of,
    read_metric,
)

MODES = {"min": "min", "max": "max"}
THRESHOLD_MODES = ("rel", "abs")


class PlateauDecisions:
    """When a plateau schedule reduces: torch's ``ReduceLROnPlateau.step`` on each reported metric.

    ``mode`` is ``"min"`` or ``"max"`` (MMEngine's ``rule`` less / greater maps to them).
    ``reductions`` holds the update index of each reduction, in order. ``name`` names the
    schedule in messages; ``monitor`` is the key read from a reported mapping.
    """

    def __init__(
        self,
        *,
        mode: str,
        threshold: float,
        threshold_mode: str,
        patience: int,
        cooldown: int,
        monitor: str | None,
        name: str,
    ) -> None:
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.patience = patience
        self.cooldown = cooldown
        self.monitor = monitor
        self.name = name
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.reports = 0
        self.reductions: list[int] = []

    def describe(self) -> str:
        """The schedule, for messages."""
        return self.name

    def is_better(self, a: float) -> bool:
        """Torch's ``is_better`` against the best so far."""
        best = self.best
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def decide(self, current: float) -> bool:
        """One metric through torch's step: whether it triggers a reduction."""
        self.reports += 1
        if self.is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad reports in cooldown are ignored
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
            return True
        return False

    def report(self, metric: float | Mapping[str, Any], update: int) -> bool:
        """Take a reported metric after ``update`` updates; True when it reduces the value from ``update`` on."""
        if self.decide(read_metric(metric, self.monitor, self.name)):
            self.reductions.append(int(update))
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Best, bad reports, cooldown, reports and each reduction's update, as plain data."""
        return {
            "name": self.name,
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "reports": self.reports,
            "reductions": list(self.reductions),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back :meth:`state_dict` (checked: a state of another kind of schedule is refused)."""
        keys = {"best", "num_bad_epochs", "cooldown_counter", "reports", "reductions"}
        if not isinstance(state, Mapping) or not keys <= set(state):
            raise StateError(f"not the state of {self.name} (it needs {sorted(keys)}), got {state!r}")
        reductions = [int(r) for r in state["reductions"]]
        if reductions != sorted(reductions) or any(r < 0 for r in reductions):
            raise StateError(f"the reductions of {self.name} must be increasing update indices, got {reductions}")
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.reports = int(state["reports"])
        self.reductions = reductions

    def rebase(self, step: int) -> None:
        """Resumed at update ``step``, earlier than saved (a rescaled run): later reductions move to it."""
        self.reductions = [min(r, int(step)) for r in self.reductions]


def reduced(value: float, factor: float, min_value: float, eps: float) -> float:
    """Torch's ``_reduce_lr`` for one group: ``max(value * factor, min_value)``, kept only if it moves by > eps."""
    new = max(value * factor, min_value)
    return new if value - new > eps else value


def values_after(reductions: list[int], levels: list[float], steps: torch.Tensor) -> torch.Tensor:
    """``levels[n]`` at each step, n the number of reductions taken at or before it."""
    if not reductions:
        return torch.full_like(steps, levels[0], dtype=torch.float64)
    at = torch.tensor(reductions, dtype=torch.float64)
    count = torch.bucketize(steps.to(torch.float64), at, right=True)
    return torch.tensor(levels, dtype=torch.float64)[count]


@attrs.frozen
class ReduceOnPlateauConfig:
    """``reduce_on_plateau``: torch's ReduceLROnPlateau, reducing the group's value when a metric stops improving."""

    mode: str = help_field(
        "'min': reduce when the metric stops decreasing (a loss); 'max': when it stops increasing (an accuracy).",
        default="min",
        validator=one_of(tuple(MODES)),
    )
    factor: float = help_field(
        "The value is multiplied by factor at each reduction (torch: < 1).",
        default=0.1,
        validator=in_range(0.0, 1.0, high_open=True),
    )
    patience: int = help_field(
        "Reports without improvement tolerated; the next one reduces.", default=10, validator=non_negative()
    )
    threshold: float = help_field(
        "How much better than the best a metric must be to count as an improvement.",
        default=1e-4,
        validator=non_negative(),
    )
    threshold_mode: str = help_field(
        "'rel': better than best * (1 -/+ threshold); 'abs': better than best -/+ threshold.",
        default="rel",
        validator=one_of(THRESHOLD_MODES),
    )
    cooldown: int = help_field(
        "Reports after a reduction during which bad ones are not counted.", default=0, validator=non_negative()
    )
    min_value: float = help_field(
        "The value is never reduced below this (torch's min_lr).", default=0.0, validator=non_negative()
    )
    eps: float = help_field(
        "A reduction changing the value by eps or less is skipped.", default=1e-8, validator=non_negative()
    )
    monitor: str | None = help_field(
        "The key read when a mapping of metrics is reported (built.report({'val_loss': ...})); "
        "None: report one number.",
        default=None,
    )


class ReduceOnPlateau:
    """A group's value, reduced by ``factor`` at each reduction taken (relative: from the group's own value)."""

    relative = True

    def __init__(self, config: ReduceOnPlateauConfig, context: ScheduleContext) -> None:
        if not math.isfinite(context.base):
            raise ConfigError(f"the group's value must be finite, got {context.base}", context.path)
        self.base = float(context.base)
        self.factor, self.min_value, self.eps = config.factor, config.min_value, config.eps
        where = f"reduce_on_plateau at {context.path}" if context.path else "reduce_on_plateau"
        self.metric_state = PlateauDecisions(
            mode=config.mode,
            threshold=config.threshold,
            threshold_mode=config.threshold_mode,
            patience=config.patience,
            cooldown=config.cooldown,
            monitor=config.monitor,
            name=where,
        )
        self._levels = [self.base]

    def levels(self, count: int) -> list[float]:
        """The value after 0, 1, ..., ``count`` reductions."""
        while len(self._levels) <= count:
            self._levels.append(reduced(self._levels[-1], self.factor, self.min_value, self.eps))
        return self._levels[: count + 1]

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The group's value at each step, after the reductions taken at or before it."""
        reductions = self.metric_state.reductions
        return values_after(reductions, self.levels(len(reductions)), steps)
