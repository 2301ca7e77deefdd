"""MMCV 1.x's Cyclic and OneCycle policies, for the lr and for the momentum.

Built on this plugin's updater machinery (warmup, timing, MMCV's float arithmetic) and
registered by ``optiplug_mmcv``. Both run per iteration only (``by_epoch=False``, as MMCV
asserts) and need the run's length.

* ``mmcv_cyclic`` / ``mmcv_momentum_cyclic``: ``CyclicLrUpdaterHook`` /
  ``CyclicMomentumUpdaterHook``: cycles of ``T // cyclic_times`` iterations, up from the
  base to ``base * target_ratio[0]`` over the first ``int(step_ratio_up * cycle)``, then
  to ``base * target_ratio[1]``; ``gamma`` shrinks the swing each cycle.
* ``mmcv_one_cycle``: ``OneCycleLrUpdaterHook`` (its base is ``max_lr / div_factor``;
  the optimizer's lr is ignored, as in MMCV).
* ``mmcv_momentum_one_cycle``: ``OneCycleMomentumUpdaterHook`` (``max_momentum`` ->
  ``base_momentum`` -> ``max_momentum``; the group's momentum is ignored).

>>> # lr_config=dict(policy='cyclic', target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4)
>>> # with lr 0.1 over 30 iterations: 0.1 at 0, 0.868 at 9, 0.933 at 15, 0.0076 at 29
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, ScheduleSpec, help_field, in_range, is_number, positive
from optiplug_mmcv.python_float_math import ANNEALERS, pow_of
from optiplug_mmcv.updater import (
    LrOptions,
    MomentumOptions,
    Policy,
    RunnerClock,
    Updater,
    anneal_strategy,
    per_iteration_only,
    updater,
)

Phase = tuple[float, float, float]


def target_ratios(value: Any) -> tuple[float, float]:
    """Cyclic's ``target_ratio``: a number r (-> (r, r / 1e5)), or a list/tuple of one or two numbers."""
    if is_number(value):
        return float(value), value / 1e5
    if isinstance(value, list | tuple) and len(value) in (1, 2) and all(is_number(v) for v in value):
        return (value[0], value[0] / 1e5) if len(value) == 1 else (value[0], value[1])
    raise ConfigError(f"must be a number or a list of one or two numbers, got {value!r}", "target_ratio")


def a_number(name: str, hint: str) -> Callable[[Any], float]:
    """A converter refusing per-group lists and per-optimizer dicts (optiplug merges groups)."""

    def convert(value: Any) -> float:
        if not is_number(value):
            raise ConfigError(f"must be a number, got {value!r}; {hint}", name)
        return float(value)

    return convert


PER_GROUP_HINT = "per-group lists and per-optimizer dicts depend on MMCV's group layout and are not supported"


def _swing_decay(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 1:
        raise ConfigError(f"must be in (0, 1], got {value!r}", attribute.name)


@attrs.frozen(kw_only=True, slots=False)
class CyclicFields:
    """The options of MMCV's Cyclic hooks besides the updater base's (a mixin)."""

    by_epoch: bool = per_iteration_only()
    cyclic_times: int = help_field("Number of cycles in the run.", default=1, validator=positive())
    step_ratio_up: float = help_field(
        "Fraction of each cycle spent going up, in [0, 1).", default=0.4, validator=in_range(0, 1, high_open=True)
    )
    anneal_strategy: str = anneal_strategy()
    gamma: float = help_field(
        "Each cycle's swing is gamma times the previous one's, in (0, 1].", default=1.0, validator=_swing_decay
    )


@attrs.frozen(kw_only=True)
class CyclicLrConfig(CyclicFields, LrOptions):
    """``policy='Cyclic'`` for the lr."""

    target_ratio: Any = help_field(
        "(high, low) ratios to the lr: a pair, or one number r meaning (r, r / 1e5).",
        default=(10, 1e-4),
        converter=target_ratios,
    )


@attrs.frozen(kw_only=True)
class CyclicMomentumConfig(CyclicFields, MomentumOptions):
    """``policy='Cyclic'`` for the momentum (usually paired with the Cyclic lr)."""

    target_ratio: Any = help_field(
        "(low, high) ratios to the momentum: a pair, or one number r meaning (r, r / 1e5).",
        default=(0.85 / 0.95, 1),
        converter=target_ratios,
    )


def cyclic(base: float, clock: RunnerClock, config: CyclicLrConfig | CyclicMomentumConfig) -> Policy:
    """The Cyclic hooks' regular value: per cycle, up to ``target_ratio[0]``, then to ``target_ratio[1]``."""
    per_cycle = int(clock.iterations) // config.cyclic_times
    if per_cycle == 0:
        raise ConfigError(
            f"{config.cyclic_times} cycles do not fit in {int(clock.iterations)} iterations", "cyclic_times"
        )
    up = int(config.step_ratio_up * per_cycle)
    high, low = config.target_ratio
    phases = [(0, up, 1, high), (up, per_cycle, high, low)]
    anneal = ANNEALERS[config.anneal_strategy]

    def policy(iters: torch.Tensor) -> torch.Tensor:
        within = torch.remainder(iters, per_cycle)
        scale = pow_of(config.gamma, torch.div(iters, per_cycle, rounding_mode="floor"))
        out = torch.full_like(iters, base)
        for start, end, start_ratio, end_ratio in phases:
            if end <= start:
                continue
            # The swing shrinks toward the base: the up phase's end, the down phase's start.
            first = start_ratio if start == 0 else 1 - scale + start_ratio * scale
            last = 1 - scale + end_ratio * scale if start == 0 else end_ratio
            value = anneal(base * first, base * last, (within - start) / (end - start))
            out = torch.where((start <= within) & (within < end), value, out)
        return out

    return policy


def phased(iters: torch.Tensor, phases: Sequence[Phase], anneal: Callable[..., torch.Tensor]) -> torch.Tensor:
    """OneCycle's phases ``(end_iter, start_value, end_value)``, evaluated at each iteration.

    The first phase with ``i <= end_iter`` anneals from the previous phase's end;
    iterations past every end use the last phase.
    """
    starts = [0.0, *(end for end, _, _ in phases[:-1])]
    out: torch.Tensor | None = None
    for (end, first, last), start in reversed(list(zip(phases, starts, strict=True))):
        # A phase of length 0 is never selected inside the run; keep its values finite.
        value = anneal(first, last, (iters - start) / ((end - start) or 1.0))
        out = value if out is None else torch.where(iters <= end, value, out)
    assert out is not None
    return out


@attrs.frozen(kw_only=True, slots=False)
class OneCycleFields:
    """The options both OneCycle hooks share (a mixin)."""

    by_epoch: bool = per_iteration_only()
    pct_start: float = help_field(
        "Fraction of the cycle spent going up, in [0, 1].", default=0.3, validator=in_range(0, 1)
    )
    anneal_strategy: str = anneal_strategy()
    three_phase: bool = help_field("Go back down symmetrically, then anneal to the minimum.", default=False)

    def first_phase_end(self, total: float) -> float:
        """``pct_start * total - 1``; 0 would make MMCV divide by zero at iteration 0."""
        end = float(self.pct_start * total) - 1
        if end == 0:
            raise ConfigError(
                f"pct_start * total steps is 1 ({self.pct_start} * {total}): the first phase is empty", "pct_start"
            )
        return end


@attrs.frozen(kw_only=True)
class OneCycleLrConfig(OneCycleFields, LrOptions):
    """``policy='OneCycle'`` for the lr: from max_lr / div_factor up to max_lr, then down."""

    max_lr: Any = help_field("The peak lr (one number for every group).", converter=a_number("max_lr", PER_GROUP_HINT))
    total_steps: int | None = help_field(
        "The cycle's length in iterations (>= the run's); default: the run's.", default=None, validator=positive()
    )
    div_factor: float = help_field("The cycle starts at max_lr / div_factor.", default=25.0, validator=positive())
    final_div_factor: float = help_field(
        "It ends at max_lr / div_factor / final_div_factor.", default=1e4, validator=positive()
    )


@attrs.frozen(kw_only=True)
class OneCycleMomentumConfig(OneCycleFields, MomentumOptions):
    """``policy='OneCycle'`` for the momentum: max_momentum -> base_momentum -> max_momentum."""

    base_momentum: Any = help_field(
        "The momentum at the lr's peak.", default=0.85, converter=a_number("base_momentum", PER_GROUP_HINT)
    )
    max_momentum: Any = help_field(
        "The momentum at the start and the end.", default=0.95, converter=a_number("max_momentum", PER_GROUP_HINT)
    )


def one_cycle_lr(clock: RunnerClock, config: OneCycleLrConfig) -> Policy:
    """``OneCycleLrUpdaterHook``'s regular lr (every group alike: ``max_lr / div_factor`` is the base)."""
    runner_total = clock.iterations
    total = config.total_steps if config.total_steps is not None else runner_total
    if total < runner_total:
        raise ConfigError(f"must be >= the run's {int(runner_total)} iterations, got {total}", "total_steps")
    base = config.max_lr / config.div_factor
    div, final = config.div_factor, 1 / config.final_div_factor
    ends = [config.first_phase_end(total)]
    ratios: list[tuple[float, float]] = [(1, div)]
    if config.three_phase:
        ends.append(float(2 * config.pct_start * total) - 2)
        ratios += [(div, 1), (1, final)]
    else:
        ratios.append((div, final))
    ends.append(total - 1)
    phases = [(end, base * a, base * b) for end, (a, b) in zip(ends, ratios, strict=True)]
    anneal = ANNEALERS[config.anneal_strategy]
    return lambda iters: phased(iters, phases, anneal)


def one_cycle_momentum(clock: RunnerClock, config: OneCycleMomentumConfig) -> Policy:
    """``OneCycleMomentumUpdaterHook``'s regular momentum (every group alike)."""
    total = clock.iterations
    low, high = config.base_momentum, config.max_momentum
    phases: list[Phase] = [(config.first_phase_end(total), high, low)]
    if config.three_phase:
        phases += [(float(2 * config.pct_start * total) - 2, low, high), (total - 1, high, high)]
    else:
        phases.append((total - 1, low, high))
    anneal = ANNEALERS[config.anneal_strategy]
    return lambda iters: phased(iters, phases, anneal)


def _cyclic(config: CyclicLrConfig | CyclicMomentumConfig, context: ScheduleContext) -> Updater:
    return updater(cyclic(context.base, RunnerClock.of(config, context), config), config, context)


def _one_cycle_lr(config: OneCycleLrConfig, context: ScheduleContext) -> Updater:
    return updater(one_cycle_lr(RunnerClock.of(config, context), config), config, context)


def _one_cycle_momentum(config: OneCycleMomentumConfig, context: ScheduleContext) -> Updater:
    return updater(one_cycle_momentum(RunnerClock.of(config, context), config), config, context)


def schedule_specs() -> list[ScheduleSpec]:
    """MMCV's Cyclic and OneCycle policies, for the lr and the momentum (all relative)."""
    return [
        ScheduleSpec("mmcv_cyclic", CyclicLrConfig, _cyclic, "MMCV lr policy 'Cyclic'", relative=True),
        ScheduleSpec("mmcv_one_cycle", OneCycleLrConfig, _one_cycle_lr, "MMCV lr policy 'OneCycle'", relative=True),
        ScheduleSpec(
            "mmcv_momentum_cyclic", CyclicMomentumConfig, _cyclic, "MMCV momentum policy 'Cyclic'", relative=True
        ),
        ScheduleSpec(
            "mmcv_momentum_one_cycle",
            OneCycleMomentumConfig,
            _one_cycle_momentum,
            "MMCV momentum policy 'OneCycle'",
            relative=True,
        ),
    ]
