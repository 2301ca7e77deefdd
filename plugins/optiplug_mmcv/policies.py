"""The regular values of MMCV's policies, as functions of the iteration index.

Each function returns a :data:`~optiplug_mmcv.updater.Policy` for one param group's base
value ``base`` (MMCV's ``initial_lr`` / ``initial_momentum``). The LR and momentum hooks
of one policy share these; the config classes live in ``lr_policies`` and
``momentum_policies`` (Cyclic and OneCycle in ``cyclic_policies``, CosineRestart in
``cosine_restart_policy``). Formulas and operation order are MMCV 1.x's
(``mmcv/runner/hooks/lr_updater.py``, ``momentum_updater.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optiplug.plugin import ConfigError
from optiplug_mmcv.python_float_math import annealing_cos, annealing_linear, pow_of, pow_to
from optiplug_mmcv.updater import Policy, RunnerClock
from optiplug_mmcv.whole_numbers import is_whole


def floor_target(base: float, absolute: float | None, ratio: float | None) -> float:
    """The annealing target: ``base * ratio`` if a ratio is given, else the absolute value."""
    return base * ratio if ratio is not None else float(absolute)  # type: ignore[arg-type]


def exactly_one(name: str, value: Any, ratio_name: str, ratio: Any) -> None:
    """MMCV's ``assert (min_lr is None) ^ (min_lr_ratio is None)``, as a ConfigError."""
    if (value is None) == (ratio is None):
        given = "both" if value is not None else "neither"
        raise ConfigError(f"give exactly one of {name} and {ratio_name} (got {given})", name)


def steps_list(value: Any) -> int | list[int]:
    """Step's ``step``: a whole number > 0 or a list of them (a tuple is read as a list)."""
    if is_whole(value):
        if value <= 0:
            raise ConfigError(f"must be > 0, got {value!r}", "step")
        return int(value)
    if isinstance(value, list | tuple) and value and all(is_whole(s) and s > 0 for s in value):
        return [int(s) for s in value]
    raise ConfigError(f"must be a whole number > 0 (below 2**53) or a non-empty list of them, got {value!r}", "step")


def fixed(base: float) -> Policy:
    """``Fixed``: the base value throughout."""
    return lambda iters: torch.full_like(iters, base)


def step(base: float, clock: RunnerClock, steps: int | Sequence[int], gamma: float, floor: float | None) -> Policy:
    """``Step``: ``base * gamma ** k``, clipped below at ``floor`` (min_lr / min_momentum).

    ``k = p // step`` for an int; for a list, the index of the first milestone ``> p``
    (its length past the last one).
    """

    def policy(iters: torch.Tensor) -> torch.Tensor:
        value = base * pow_of(gamma, step_exponent(clock.progress(iters), steps))
        return value if floor is None else value.clamp(min=floor)

    return policy


def step_exponent(progress: torch.Tensor, steps: int | Sequence[int]) -> torch.Tensor:
    """How many decays have happened at each progress value."""
    if isinstance(steps, int):
        return torch.div(progress, steps, rounding_mode="floor")
    exponent = torch.full_like(progress, float(len(steps)))
    for index in reversed(range(len(steps))):
        exponent = torch.where(progress < steps[index], torch.full_like(progress, float(index)), exponent)
    return exponent


def exp(base: float, clock: RunnerClock, gamma: float) -> Policy:
    """``Exp``: ``base * gamma ** p``."""
    return lambda iters: base * pow_of(gamma, clock.progress(iters))


def poly(base: float, clock: RunnerClock, power: float, min_lr: float) -> Policy:
    """``Poly``: ``(base - min_lr) * (1 - p / P) ** power + min_lr``."""
    total = clock.max_progress
    return lambda iters: (base - min_lr) * pow_to(1 - clock.progress(iters) / total, power) + min_lr


def inv(base: float, clock: RunnerClock, gamma: float, power: float) -> Policy:
    """``Inv``: ``base * (1 + gamma * p) ** -power``."""
    return lambda iters: base * pow_to(1 + gamma * clock.progress(iters), -power)


def cosine(base: float, clock: RunnerClock, target: float) -> Policy:
    """``CosineAnnealing``: ``annealing_cos(base, target, p / P)``."""
    total = clock.max_progress
    return lambda iters: annealing_cos(base, target, clock.progress(iters) / total)


def linear(base: float, clock: RunnerClock, target: float) -> Policy:
    """``LinearAnnealing``: ``annealing_linear(base, target, p / P)``."""
    total = clock.max_progress
    return lambda iters: annealing_linear(base, target, clock.progress(iters) / total)


def flat_cosine(base: float, clock: RunnerClock, start_percent: float, target: float) -> Policy:
    """``FlatCosineAnnealing``: ``base`` until ``st = round(P * start_percent)``, then a cosine over ``[st, P]``."""
    total = clock.max_progress
    start = round(total * start_percent)
    span = total - start

    def policy(iters: torch.Tensor) -> torch.Tensor:
        shifted = clock.progress(iters) - start
        # span is 0 only with start_percent=1, where the cosine is never reached inside the run.
        annealed = annealing_cos(base, target, shifted / (span or 1.0))
        return torch.where(shifted < 0, torch.full_like(annealed, base), annealed)

    return policy


def shifted_cosine(base: float, clock: RunnerClock, target: float, shift: int) -> Policy:
    """MMSelfSup's ``StepFixCosineAnnealing``: the cosine over ``[shift, P]`` (``shift``: the warmup)."""
    span = clock.max_progress - shift
    if span <= 0:
        raise ConfigError(
            f"the warmup ({shift} {'epochs' if clock.by_epoch else 'iterations'}) is as long as the run", "warmup_iters"
        )
    return lambda iters: annealing_cos(base, target, (clock.progress(iters) - shift) / span)
