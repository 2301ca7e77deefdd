"""optiplug_wsd: the warmup-stable-decay schedule ``wsd`` and its cooldown branches (Hägele et al., 2024).

Schedule: ``wsd`` (see :mod:`optiplug_wsd.schedule`): a linear warmup from 0 over the
first ``warmup`` of the run, ``value`` held, and a cooldown to 0 over the last ``decay``
(linear, cosine or 1-sqrt), with its lr scaling rule. :func:`cooldown_recipe` writes
the recipe of a cooldown run branched from update ``k`` of a stable phase, and
:func:`start_branch` resumes such a run from the checkpoint of update ``k``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optiplug.plugin import ScalingRule, ScheduleSpec, hookimpl

if TYPE_CHECKING:
    from optiplug import Built, Recipe

__all__ = ["cooldown_recipe", "start_branch"]


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The ``wsd`` schedule."""
    from optiplug_wsd.schedule import WSD, WSDConfig, branch_wsd

    description = "warmup from 0, value held, cooldown to 0 (linear, cosine, 1-sqrt) over the last decay"
    return [ScheduleSpec("wsd", WSDConfig, WSD, description, branch=branch_wsd)]


@hookimpl
def optiplug_scaling_rules() -> list[ScalingRule]:
    """``lr_scaling`` moves ``value``, the stable phase's value."""
    from optiplug_wsd.schedule import rescale_wsd

    return [ScalingRule("wsd", rescale_wsd, "value = scaled value")]


def cooldown_recipe(config: Any, at: int, **options: Any) -> Recipe:
    """The recipe of a cooldown run branched at update ``at`` (see :func:`optiplug_wsd.branch.cooldown_recipe`)."""
    from optiplug_wsd.branch import cooldown_recipe as write

    return write(config, at, **options)


def start_branch(built: Built, state: Any) -> None:
    """Resume a cooldown run from the checkpoint of its branch point (see :mod:`optiplug_wsd.branch`)."""
    from optiplug_wsd.branch import start_branch as start

    start(built, state)
