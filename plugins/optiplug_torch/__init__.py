"""optiplug_torch: every ``torch.optim`` optimizer by name, and the basic schedules.

Schedules (numerically equal to fvcore / ClassyVision / VISSL): constant, linear,
cosine, exponential, polynomial, step, multistep, step_with_fixed_gamma, inverse_sqrt,
each with its lr scaling rule; reduce_on_plateau (torch's ReduceLROnPlateau, driven by
metrics the user reports: ``built.report(val_loss)``).
"""

from __future__ import annotations

from optiplug import OptimizerSpec, ScalingRule, ScheduleSpec, hookimpl


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """Every Optimizer subclass in ``torch.optim``, by class name (case-insensitive)."""
    from optiplug_torch.optimizers import torch_optimizers

    return torch_optimizers()


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The fvcore-compatible schedules."""
    from optiplug_torch.schedules import schedule_specs

    return schedule_specs()


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """How each of these schedules moves to a new peak lr (VISSL's rules)."""
    from optiplug_torch.scaling import scaling_rules

    return scaling_rules()
