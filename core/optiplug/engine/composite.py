"""The composite schedule (fvcore's CompositeParamScheduler) and its lr scaling rule.

Parts run one after the other over fractions of the run; each part is ``rescaled`` to
its own span or ``fixed`` on the whole run's progress. When the lr is scaled with the
batch, every part is rescaled and linear parts are treated as warmups.
"""

from __future__ import annotations

import math

import attrs
import torch

from optiplug.engine.schedules import WHERE_EPSILON
from optiplug.engine.structuring import evolve_params
from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.records import Clock, ScalingContext, ScalingRule, Schedule, ScheduleContext, ScheduleSpec
from optiplug.recipe.model import ScheduleConfig
from optiplug.recipe.validators import help_field

RESCALED, FIXED = "rescaled", "fixed"


@attrs.frozen
class CompositeConfig:
    """Options of ``composite``: parts run one after the other over fractions of the run."""

    schedulers: list[ScheduleConfig] = help_field("The parts, in order.")
    lengths: list[float] = help_field("Fraction of the run each part covers; they sum to 1 (within 1e-3).")
    interval_scaling: list[str] = help_field(
        "Per part: 'rescaled' (the part sees its own span as 0..1) or 'fixed' (the part sees the "
        "whole run's progress). Empty means all rescaled.",
        factory=list,
    )

    def __attrs_post_init__(self) -> None:
        n = len(self.schedulers)
        if n == 0:
            raise ConfigError("needs at least one schedule", "schedulers")
        if len(self.lengths) != n:
            raise ConfigError(f"needs one length per schedule ({n}), got {len(self.lengths)}", "lengths")
        if any(not math.isfinite(x) or x <= 0 for x in self.lengths):
            raise ConfigError(f"every length must be > 0, got {self.lengths}", "lengths")
        if abs(sum(self.lengths) - 1.0) >= 1e-3:
            raise ConfigError(
                f"lengths must sum to 1 (within 1e-3), got {self.lengths} (sum {sum(self.lengths):g})", "lengths"
            )
        if self.interval_scaling and len(self.interval_scaling) != n:
            raise ConfigError(
                f"needs one entry per schedule ({n}), got {len(self.interval_scaling)}; "
                "leave it empty for all 'rescaled'",
                "interval_scaling",
            )
        for i, mode in enumerate(self.interval_scaling):
            if mode not in (RESCALED, FIXED):
                raise ConfigError(f"must be 'rescaled' or 'fixed', got {mode!r}", f"interval_scaling[{i}]")

    def fixed_lengths(self) -> list[float]:
        """The lengths with the last one set to ``1 - sum(others)`` (as fvcore does)."""
        lengths = list(self.lengths)
        if sum(lengths) != 1.0:
            lengths[-1] = 1.0 - sum(lengths[:-1])
        return lengths

    def scalings(self) -> list[str]:
        """The interval scaling of each part (default: rescaled)."""
        return list(self.interval_scaling) or [RESCALED] * len(self.schedulers)


class Composite:
    """fvcore's composite schedule over the run's progress w = step / total_steps.

    Part i covers w in (b[i-1], b[i]] shifted by fvcore's 1e-6 (the boundary hands over
    for w > b - 1e-6). A rescaled part sees ``(w - start) / length``, a fixed part ``w``.

    >>> # linear 0.01 -> 0.1 over the first 10%, then cosine 0.1 -> 0 on the global w:
    >>> # w = 0, 0.05, 0.1, 0.5 give 0.01, 0.055, 0.097553, 0.05
    """

    def __init__(self, config: CompositeConfig, context: ScheduleContext) -> None:
        clock = context.clock
        total = clock.total_steps
        if total is None:
            raise ConfigError("composite needs the length of the run (num_epochs or total_steps)", context.path)
        assert context.build is not None
        self.total = float(total)
        self.lengths = config.fixed_lengths()
        self.modes = config.scalings()
        running, self.starts, ends = 0.0, [], []
        for length in self.lengths:
            running += length
            ends.append(running)
            self.starts.append(running - length)
        self.boundaries = torch.tensor(ends[:-1], dtype=torch.float64)
        self.parts: list[Schedule] = []
        for i, (child, length, mode) in enumerate(zip(config.schedulers, self.lengths, self.modes, strict=True)):
            child_clock = Clock(clock.steps_per_epoch, length * total) if mode == RESCALED else clock
            part_path = join_path(context.path, "schedulers", i)
            self.parts.append(context.build(child, child_clock, part_path))
            if getattr(self.parts[-1], "metric_state", None) is not None:
                raise ConfigError(
                    f"{child.name!r} is driven by reported metrics, not by the run's progress, so it cannot be a "
                    "part of a composite (whose parts are functions of the update); use it as the option's whole "
                    "schedule",
                    join_path(part_path, "name"),
                )
        kinds = {bool(getattr(p, "relative", False)) for p in self.parts}
        if len(kinds) > 1:
            raise ConfigError(
                "cannot mix relative and absolute schedules in one composite", join_path(context.path, "schedulers")
            )
        self.relative = kinds.pop()

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """Each step's value from the part its progress falls in."""
        where = steps / self.total
        index = torch.bucketize(where + WHERE_EPSILON, self.boundaries, right=False)
        out = torch.empty_like(where)
        for i, part in enumerate(self.parts):
            mask = index == i
            if not bool(mask.any()):
                continue
            w = where[mask]
            if self.modes[i] == RESCALED:
                local = (w - self.starts[i]) / self.lengths[i]
                out[mask] = part.values(local * (self.lengths[i] * self.total))
            else:
                out[mask] = part.values(steps[mask])
        return out


def composite_spec() -> ScheduleSpec:
    """The composite schedule's registry record."""
    return ScheduleSpec(
        name="composite",
        config_class=CompositeConfig,
        factory=Composite,
        description="Parts in sequence over fractions of the run (fvcore CompositeParamScheduler)",
    )


def rescale_composite(schedule: ScheduleConfig, context: ScalingContext) -> ScheduleConfig:
    """Composite rule: rescale every part; treat linear parts as warmups.

    Every linear part starts at ``base_value * batch_per_node / base_batch_size`` and
    ends at the scaled value. The last linear part is removed on one node, or when its
    ramp would not rise. One remaining part then spans the whole run; with several, the
    removed part's length goes to the part after it (or before it, if it was last).
    """
    params: CompositeConfig = schedule.params
    parts = [context.rescale(c, join_path(context.path, "schedulers", i)) for i, c in enumerate(params.schedulers)]
    linear = [i for i, c in enumerate(parts) if c.name == "linear"]
    if not linear:
        return evolve_params(schedule, schedulers=parts)
    start = context.base_value * (context.batch_per_node / context.base_batch_size)
    parts = [evolve_params(c, start_value=start) if c.name == "linear" else c for c in parts]
    last = linear[-1]
    if not (context.num_nodes == 1 or start >= parts[last].params.end_value):
        return evolve_params(schedule, schedulers=parts)
    lengths, modes = list(params.lengths), params.scalings()
    del parts[last]
    if not parts:
        raise ConfigError("lr scaling removed the warmup and nothing is left of the composite", context.path)
    if len(parts) == 1:
        return attrs.evolve(parts[0], update_interval=schedule.update_interval)
    heir = last if last < len(parts) else last - 1
    removed = lengths.pop(last)
    del modes[last]
    lengths[heir] += removed
    return evolve_params(schedule, schedulers=parts, lengths=lengths, interval_scaling=modes)


def composite_rule() -> ScalingRule:
    """The composite's scaling rule record."""
    return ScalingRule("composite", rescale_composite, "rescale each part; linear parts are warmups")
