"""Drop-in replacements for adamwr's ``CyclicLRWithRestarts`` and its two callbacks.

Same constructor arguments and loop as adamwr (``scheduler.step()`` at the start of each
epoch, ``scheduler.batch_step()`` after each ``optimizer.step()``), computed by the
``restarts`` and ``normalized_decay`` schedules of this plugin: batch j of epoch e is
update ``k = e * nb + j`` (nb = ceil(epoch_size / batch_size)) of a ``restarts`` schedule
with ``period_epochs=restart_period``, ``rounding='ceil'``, ``min_value=min_lr`` and the
policy's shape. Differences from adamwr (see docs/adamwr.md):
a restarted cycle's first batch runs at the new peak; exp_range is ``gamma ** n``;
in-epoch progress is float64; a bad argument fails here; triangular2 and exp_range
compose with the user's callbacks; ``get_last_lr``, ``state_dict`` and
``load_state_dict`` work; ``last_epoch`` resumes at the epoch after it.

The ready-made callbacks become closed-form options (``ReduceMaxLROnRestart(r)`` is a
peak decay r per restart, ``ExpReduceMaxLROnIteration(g)`` a factor ``g ** n``). Any
other callable (a callback or ``policy_fn``) takes the *fallback path*: the period is
still located in closed form, but the callbacks run as adamwr runs them, once per
restart and once per batch, each result kept for the next call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from optiplug.plugin import Clock, ConfigError, StateError, ValueTable
from optiplug_cyclic.profiles import POLICIES, Envelope, Shape, policy_shape
from optiplug_cyclic.ranges import ValueRange
from optiplug_cyclic.timebase import Timebase
from optiplug_restarts.decay import NormalizedDecay
from optiplug_restarts.periods import CeilPeriods
from optiplug_restarts.restarts import Restarts

RestartCallback = Callable[[float, float], tuple[float, float]]
IterationCallback = Callable[[float, float, int], tuple[float, float]]
PolicyFn = Callable[[float, float], float]


class ReduceMaxLROnRestart:
    """adamwr's restart callback: the peak is multiplied by ``ratio`` at every restart."""

    def __init__(self, ratio: float = 0.75) -> None:
        self.ratio = ratio

    def __call__(self, eta_min: float, eta_max: float) -> tuple[float, float]:
        """``(eta_min, eta_max * ratio)``."""
        return eta_min, eta_max * self.ratio


class ExpReduceMaxLROnIteration:
    """adamwr's iteration callback; given to the scheduler it means a peak of ``gamma ** n`` at update n."""

    def __init__(self, gamma: float = 1) -> None:
        self.gamma = gamma

    def __call__(self, eta_min: float, eta_max: float, iterations: int) -> tuple[float, float]:
        """``(eta_min, eta_max * gamma ** iterations)``, as adamwr's (which applied it cumulatively)."""
        return eta_min, eta_max * self.gamma**iterations


def _check(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"must be {expected}, got {value!r}", name)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Callbacks:
    """The user's callbacks that are not ready-made: adamwr's stateful (eta_min, eta_max)."""

    def __init__(self, on_restart: RestartCallback | None, on_iteration: IterationCallback | None) -> None:
        self.on_restart = on_restart
        self.on_iteration = on_iteration
        self.eta_min, self.eta_max = 0.0, 1.0
        self.cycle, self.position = 0, -1

    @property
    def active(self) -> bool:
        return self.on_restart is not None or self.on_iteration is not None

    def advance(self, cycle: int, position: int) -> None:
        """Run the restart callback for each period entered and the iteration callback once per new update."""
        if self.on_restart is not None:
            for _ in range(self.cycle + 1, cycle + 1):
                self.eta_min, self.eta_max = self.on_restart(self.eta_min, self.eta_max)
        self.cycle = max(self.cycle, cycle)
        if self.on_iteration is not None and position != self.position:
            self.eta_min, self.eta_max = self.on_iteration(self.eta_min, self.eta_max, position)
        self.position = position

    def state(self) -> dict[str, Any]:
        return {"eta_min": self.eta_min, "eta_max": self.eta_max, "cycle": self.cycle, "position": self.position}

    def load(self, state: dict[str, Any]) -> None:
        self.eta_min, self.eta_max = float(state["eta_min"]), float(state["eta_max"])
        self.cycle, self.position = int(state["cycle"]), int(state["position"])


def _split_restart(callback: RestartCallback | None) -> tuple[Envelope, RestartCallback | None]:
    if type(callback) is ReduceMaxLROnRestart:
        return Envelope(per_cycle=callback.ratio), None
    return Envelope(), callback


def _split_iteration(callback: IterationCallback | None) -> tuple[Envelope, IterationCallback | None]:
    if type(callback) is ExpReduceMaxLROnIteration:
        return Envelope(per_step=callback.gamma), None
    return Envelope(), callback


class _Curve:
    """A function of the update index, read by :class:`~optiplug.plugin.ValueTable` a block at a time."""

    def __init__(self, curve: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.values = curve


def _progress(elapsed: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    return (elapsed / length).clamp(0.0, 1.0)


class CyclicLRWithRestarts(LRScheduler):
    """adamwr's scheduler: per-batch lr and normalized weight decay over restart periods.

    Per group g at update k: ``lr = min_lr_g + (initial_lr_g - min_lr_g) * eta_k`` and
    ``weight_decay = initial_weight_decay_g * eta_k * sqrt(batch_size / (epoch_size * T))``,
    T the current period in epochs (``ceil(restart_period)``, then ``ceil(T * t_mult)``).

    >>> scheduler = CyclicLRWithRestarts(optimizer, 32, 1024, restart_period=5, t_mult=1.2)
    >>> for epoch in range(100):
    ...     scheduler.step()
    ...     for batch in loader:
    ...         ...; optimizer.step(); scheduler.batch_step()
    """

    def __init__(
        self,
        optimizer: Optimizer,
        batch_size: int,
        epoch_size: int,
        restart_period: float = 100,
        t_mult: float = 2,
        last_epoch: int = -1,
        verbose: bool = False,
        policy: str = "cosine",
        policy_fn: PolicyFn | None = None,
        min_lr: float = 1e-7,
        eta_on_restart_cb: RestartCallback | None = None,
        eta_on_iteration_cb: IterationCallback | None = None,
        gamma: float = 1.0,
        triangular_step: float = 0.5,
    ) -> None:
        # LRScheduler.__init__ is not called (as in adamwr): it would step and wrap optimizer.step.
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.settings = self._checked(locals())
        self.optimizer = optimizer
        self.verbose = verbose
        self.policy_fn = policy_fn
        self.batches_per_epoch = -(-epoch_size // batch_size)
        self.last_epoch = last_epoch
        self.iteration = 0
        self._init_groups(optimizer, last_epoch, min_lr)
        shape = (
            policy_shape(policy, 0.5 if policy == "exp_range" else triangular_step, gamma)
            if policy_fn is None
            else None
        )
        restart_envelope, on_restart = _split_restart(eta_on_restart_cb)
        iteration_envelope, on_iteration = _split_iteration(eta_on_iteration_cb)
        base = shape or policy_shape("cosine")
        self.shape = Shape(base.profile, base.envelope * restart_envelope * iteration_envelope)
        self.callbacks = _Callbacks(on_restart, on_iteration)
        self.periods = CeilPeriods(restart_period, t_mult)
        self.timebase = Timebase(Clock(self.batches_per_epoch), in_epochs=True)
        self._last_cycle = 0
        self._columns()
        self._bind()
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    @staticmethod
    def _checked(arguments: dict[str, Any]) -> dict[str, Any]:
        a = arguments
        for name in ("batch_size", "epoch_size"):
            value = a[name]
            _check(
                isinstance(value, int) and not isinstance(value, bool) and value > 0, name, value, "a whole number > 0"
            )
        _check(
            _number(a["restart_period"]) and a["restart_period"] > 0,
            "restart_period",
            a["restart_period"],
            "> 0 (epochs)",
        )
        _check(_number(a["t_mult"]) and a["t_mult"] > 0, "t_mult", a["t_mult"], "> 0")
        last = a["last_epoch"]
        _check(
            isinstance(last, int) and not isinstance(last, bool) and last >= -1,
            "last_epoch",
            last,
            "an epoch index >= -1",
        )
        if a["policy_fn"] is None:
            _check(
                a["policy"] in POLICIES,
                "policy",
                a["policy"],
                f"one of {', '.join(map(repr, POLICIES))} (or give policy_fn)",
            )
        step = a["triangular_step"]
        _check(_number(step) and 0.0 <= step <= 1.0, "triangular_step", step, "in [0, 1]")
        _check(_number(a["gamma"]) and a["gamma"] > 0, "gamma", a["gamma"], "> 0")
        _check(_number(a["min_lr"]), "min_lr", a["min_lr"], "a finite number")
        keys = ("batch_size", "epoch_size", "restart_period", "t_mult", "policy", "min_lr", "gamma", "triangular_step")
        return {key: a[key] for key in keys}

    def _init_groups(self, optimizer: Optimizer, last_epoch: int, min_lr: float) -> None:
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
                group.setdefault("initial_weight_decay", group["weight_decay"])
            else:
                for key in ("initial_lr", "initial_weight_decay"):
                    if key not in group:
                        raise KeyError(
                            f"param {key!r} is not specified in param_groups[{i}] when resuming an optimizer"
                        )
            group.setdefault("minimum_lr", min_lr)
        groups = optimizer.param_groups
        self.base_lrs = [float(g["initial_lr"]) for g in groups]
        self.min_lrs = [float(g["minimum_lr"]) for g in groups]
        self.base_weight_decays = [float(g["initial_weight_decay"]) for g in groups]

    def _columns(self) -> None:
        """Where each update falls, in blocks of updates: what the fallback path and ``verbose`` read."""
        where = Restarts(self.periods, self.shape, ValueRange(0.0, 1.0, relative=True), self.timebase)

        def column(pick: Callable[[torch.Tensor], torch.Tensor]) -> ValueTable:
            return ValueTable(_Curve(pick))

        self._index = column(lambda steps: where.locate(steps)[0])
        self._elapsed = column(lambda steps: where.locate(steps)[1])
        self._length = column(lambda steps: where.locate(steps)[2])
        self._profile = column(lambda steps: self.shape.profile(_progress(*where.locate(steps)[1:])))
        self._envelope = column(lambda steps: self.shape.envelope(where.locate(steps)[0], steps))

    def _bind(self) -> None:
        """One restarts schedule and one normalized decay per group, from the current bases."""
        b, big_b = self.settings["batch_size"], self.settings["epoch_size"]
        self.lr_schedules = [
            Restarts(self.periods, self.shape, ValueRange(low, float(peak), relative=True), self.timebase)
            for low, peak in zip(self.min_lrs, self.base_lrs, strict=True)
        ]
        self.decays = [
            NormalizedDecay(s.multiplier, s.period_epochs, wd, b, big_b)
            for s, wd in zip(self.lr_schedules, self.base_weight_decays, strict=True)
        ]
        self.lr_tables = [ValueTable(s) for s in self.lr_schedules]
        self.decay_tables = [ValueTable(d) for d in self.decays]

    @property
    def closed_form(self) -> bool:
        """False when a custom ``policy_fn`` or callback makes the per-batch values take the fallback path."""
        return self.policy_fn is None and not self.callbacks.active

    def step(self) -> None:  # type: ignore[override]
        """Start the next epoch: set the values of its first batch."""
        self.last_epoch += 1
        self.iteration = 0
        self.batch_step()

    def batch_step(self) -> None:
        """After ``optimizer.step()``: set the values of the next batch."""
        if self.last_epoch < 0:
            raise RuntimeError("call scheduler.step() at the start of each epoch, before batch_step()")
        if self.iteration > self.batches_per_epoch:
            raise StopIteration(
                "Epoch size and batch size used in the training loop and while initializing scheduler should be "
                f"the same: {self.batches_per_epoch} batches per epoch (epoch_size {self.settings['epoch_size']}, "
                f"batch_size {self.settings['batch_size']}), but batch_step() was called more often"
            )
        self._write(self.last_epoch * self.batches_per_epoch + self.iteration)
        self.iteration += 1

    def position(self) -> int:
        """The update index whose values the groups hold (-1 before the first ``step()``)."""
        return self.last_epoch * self.batches_per_epoch + self.iteration - 1 if self.last_epoch >= 0 else -1

    def _write(self, k: int) -> None:
        if self.closed_form:
            if self.verbose:
                self._announce(int(self._locate(k)[0]), k)
            values = [(lr[k], wd[k]) for lr, wd in zip(self.lr_tables, self.decay_tables, strict=True)]
        else:
            values = self._fallback(k)
        for group, (lr, weight_decay) in zip(self.optimizer.param_groups, values, strict=False):
            group["lr"] = lr
            group["weight_decay"] = weight_decay
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _locate(self, k: int) -> tuple[float, float, float]:
        """Period index, epochs into the period (adamwr's t_cur) and the period's length, at update k."""
        return self._index[k], self._elapsed[k], self._length[k]

    def _announce(self, index: int, k: int) -> None:
        if self.verbose and index > self._last_cycle:
            print(f"Restart {index} at epoch {k // self.batches_per_epoch}")
        self._last_cycle = max(self._last_cycle, index)

    def _fallback(self, k: int) -> list[tuple[float, float]]:
        """Adamwr's ``eta_min + (eta_max - eta_min) * policy(t_cur, T)`` with the user's callables."""
        located, elapsed, length = self._locate(k)
        index = int(located)
        self._announce(index, k)
        self.callbacks.advance(index, k)
        profile = self._profile[k] if self.policy_fn is None else float(self.policy_fn(elapsed, int(length)))
        low, high = self.callbacks.eta_min, self.callbacks.eta_max * self._envelope[k]
        eta = low + (high - low) * profile
        return [(s.range(eta), d.value_of(eta, length)) for s, d in zip(self.lr_schedules, self.decays, strict=True)]

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lrs the groups hold now."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The position, the bases (lr, min_lr, weight decay) and the callbacks' running values."""
        return {
            "last_epoch": self.last_epoch,
            "iteration": self.iteration,
            "base_lrs": list(self.base_lrs),
            "min_lrs": list(self.min_lrs),
            "base_weight_decays": list(self.base_weight_decays),
            "callbacks": self.callbacks.state(),
            "last_cycle": self._last_cycle,
            "settings": dict(self.settings),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at the saved position, with the saved bases; the groups get that position's values."""
        missing = {"last_epoch", "iteration", "base_lrs", "min_lrs", "base_weight_decays", "settings"} - set(state_dict)
        if missing:
            raise StateError(f"not a CyclicLRWithRestarts state (missing {sorted(missing)})")
        changed = {k: (v, self.settings.get(k)) for k, v in state_dict["settings"].items() if self.settings.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: saved {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise StateError(f"the state was saved by a scheduler with other arguments ({detail})")
        self.last_epoch, self.iteration = int(state_dict["last_epoch"]), int(state_dict["iteration"])
        self.base_lrs = [float(x) for x in state_dict["base_lrs"]]
        self.min_lrs = [float(x) for x in state_dict["min_lrs"]]
        self.base_weight_decays = [float(x) for x in state_dict["base_weight_decays"]]
        self.callbacks.load(state_dict.get("callbacks", self.callbacks.state()))
        self._last_cycle = int(state_dict.get("last_cycle", 0))
        self._bind()
        if self.position() >= 0:
            self._write(self.position())
