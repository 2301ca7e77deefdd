"""Cooldowns branched from a checkpoint of the stable phase (Hägele et al., 2024, section 3).

A ``wsd`` run holds its value for most of the run, so one long run can be branched at
any update ``k`` of its stable phase into a short cooldown: the branch resumes from the
checkpoint written before update ``k`` and cools down over ``length`` updates, giving a
finished model of ``k + length`` updates without training it from scratch.

:func:`cooldown_recipe` writes the branch's recipe: the same recipe with the run
``k + length`` updates long (``run.total_steps``) and the ``wsd`` schedule cooling down
from ``decay_start: k``; the warmup ends at the same update as before. Its values at
updates ``>= k`` are the cooldown; before ``k`` they are the original run's (exactly in
the stable phase). :func:`start_branch` loads the checkpoint into the branch's build.
"""

from __future__ import annotations

from typing import Any

import attrs

import optiplug
from optiplug.plugin import ConfigError, Recipe, RunConfig, StateError, join_path
from optiplug_wsd.schedule import WSD, WSDConfig, snapped


def cooldown_recipe(
    config: Any,
    at: int,
    *,
    length: int | None = None,
    option: str = "lr",
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    dialect: str | None = None,
) -> Recipe:
    """The recipe of the cooldown run branched from ``config``'s run at update ``at``.

    ``config`` is anything :func:`optiplug.build` takes (a path, a mapping, a Recipe)
    whose ``schedules.<option>`` is a ``wsd``; ``steps_per_epoch`` / ``num_epochs`` are
    the run figures it was built with, when the recipe does not say them. ``length`` is
    the cooldown's length in updates; by default the original ``decay`` fraction of the
    branched run (``length / (at + length) = decay``, rounded to whole updates).
    ``at`` must lie in the stable phase, between the end of the warmup and the original
    cooldown. Write it as a file with ``optiplug.plugin.unstructure_config(recipe,
    optiplug.get_registry())``.
    """
    recipe = optiplug.to_recipe(config, dialect=dialect, steps_per_epoch=steps_per_epoch, num_epochs=num_epochs)
    path = join_path("schedules", option)
    schedule = recipe.schedules.get(option)
    if schedule is None:
        raise ConfigError(f"the recipe has no schedule for {option!r}; a cooldown branches a wsd schedule", path)
    if schedule.name != "wsd":
        raise ConfigError(f"a cooldown branches a wsd schedule, this one is {schedule.name!r}", join_path(path, "name"))
    params: WSDConfig = schedule.params
    if params.decay_start is not None:
        raise ConfigError(
            f"this is already a cooldown run (decay_start {params.decay_start}); branch from the original run",
            join_path(path, "decay_start"),
        )
    total = _total_steps(recipe.run, steps_per_epoch, num_epochs)
    warmup_end = snapped(params.warmup * total)
    stable_end = snapped(total - params.cooldown * total)
    if not isinstance(at, int) or isinstance(at, bool) or not warmup_end <= at <= stable_end:
        raise ConfigError(
            f"must be an update of the stable phase, from the end of the warmup ({warmup_end:g}) to the start of "
            f"the cooldown ({stable_end:g}); got {at!r}",
            "cooldown_recipe(at=...)",
        )
    if length is None:
        decay = params.cooldown or 0.2
        length = max(1, round(at * decay / (1.0 - decay))) if decay < 1 else max(1, at)
    elif not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ConfigError(f"must be a whole number of updates >= 1, got {length!r}", "cooldown_recipe(length=...)")
    branch_total = at + length
    cooled = attrs.evolve(params, warmup=warmup_end / branch_total, decay=None, decay_start=at)
    schedules = dict(recipe.schedules) | {option: attrs.evolve(schedule, params=cooled)}
    per_epoch = steps_per_epoch or recipe.run.steps_per_epoch
    run = attrs.evolve(recipe.run, total_steps=branch_total, steps_per_epoch=per_epoch, num_epochs=None)
    return attrs.evolve(recipe, schedules=schedules, run=run)


def _total_steps(run: RunConfig, steps_per_epoch: int | None, num_epochs: int | None) -> int:
    """The run's updates, as ``build()`` counts them (``run.total_steps`` first, then epochs)."""
    per_epoch = steps_per_epoch or run.steps_per_epoch
    epochs = num_epochs or run.num_epochs
    total = run.total_steps or (per_epoch * epochs if per_epoch and epochs else None)
    if total is None:
        raise ConfigError("the cooldown needs the run's length: give steps_per_epoch and num_epochs", "run")
    return int(total)


def start_branch(built: optiplug.Built, state: Any) -> None:
    """Resume the branch ``built`` (built from :func:`cooldown_recipe`) from the checkpoint of its branch point.

    ``state`` is the original run's :meth:`optiplug.Built.state_dict` written before
    update ``k``. The optimizer's state is loaded and the schedule moved to update
    ``k``; the recipe's fingerprint differs from the original run's on purpose (the run
    is shorter), so the scheduler's own state is not loaded. The model's weights are
    the caller's to load, as always.
    """
    at = _branch_point(built)
    saved = int(state["scheduler"]["step"]) if "scheduler" in state else None
    if saved != at:
        raise StateError(f"this cooldown branches at update {at}, the checkpoint was written at update {saved}")
    if state.get("accumulated_grads") is not None:
        raise StateError("the checkpoint was written inside an accumulation window; branch on a window boundary")
    try:
        built.optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise StateError(f"the optimizer state does not fit this model's parameters: {exc}") from None
    built.micro_steps = int(state["micro_steps"])
    built.skipped_updates = int(state.get("skipped_updates", 0))
    built.scheduler.set_step(at)


def _branch_point(built: optiplug.Built) -> int:
    starts = {
        schedule.params.decay_start
        for schedule in built.recipe.schedules.values()
        if schedule.name == "wsd" and isinstance(schedule.params, WSDConfig) and schedule.params.decay_start is not None
    }
    if len(starts) != 1:
        raise StateError(f"not a cooldown run: expected one wsd schedule with decay_start, found {sorted(starts)}")
    return int(starts.pop())


__all__ = ["WSD", "cooldown_recipe", "start_branch"]
