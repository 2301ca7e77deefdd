"""``run.compile``: the built optimizer prepared for ``torch.compile``, and the check that it took.

The conversion itself (options as 0-dim tensors, the kernel torch requires for them) is
the ``compile`` wrapper's, from the optiplug_compile plugin; this step applies it after
the recipe's wrappers and checks that every option a schedule drives is now a tensor,
which the scheduler then writes in place: a scheduled Python number would make the
compiled step recompile at each update.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim import Optimizer

from optiplug.engine.binding import Binding
from optiplug.errors import ConfigError
from optiplug.plugin_system.catalogues import Registry
from optiplug.recipe.model import Recipe, RunConfig

PATH = "run.compile"
ARGUMENT = "build(compile=...)"
WRAPPER = "compile"


def compile_path(given: RunConfig) -> str:
    """Where compile was asked for: ``build(compile=...)`` (the command line's ``--compile``) or ``run.compile``."""
    return ARGUMENT if given.compile is not None else PATH


def prepare_compile(optimizer: Optimizer, recipe: Recipe, registry: Registry, path: str = PATH) -> Optimizer:
    """``optimizer`` through the ``compile`` wrapper (its scheduled options), unless the recipe's wrappers did it.

    The wrapper's errors, at ``run.compile``, are moved to ``path``.
    """
    if any(w.name.lower() == WRAPPER for w in recipe.wrappers):
        return optimizer
    if WRAPPER not in registry.wrappers.names():
        raise ConfigError(
            "needs the optiplug_compile plugin, which provides the 'compile' wrapper (is it blocked by "
            "OPTIPLUG_DISABLE_PLUGINS?)",
            path,
        )
    spec = registry.wrappers.get(WRAPPER, path)
    try:
        return spec.wrap(optimizer, spec.config_class(options=scheduled_options(recipe)))
    except ConfigError as exc:
        if exc.path != PATH or path == PATH:
            raise
        raise ConfigError(exc.message, path) from None


def scheduled_options(recipe: Recipe) -> list[str]:
    """The options a schedule drives, in any group, by the names the recipe gives them."""
    names = set(recipe.schedules)
    for rule in recipe.rules:
        names.update(rule.schedules)
    return sorted(names)


def check_tensor_options(optimizer: Optimizer, bindings: Sequence[Binding], path: str = PATH) -> None:
    """Every option a schedule drives holds a tensor; else a ConfigError naming the option and the optimizer."""
    for b in bindings:
        value = optimizer.param_groups[b.group][b.option]
        if isinstance(value, tuple | list):
            value = value[0]
        if not isinstance(value, torch.Tensor):
            option = "beta1 (betas[0])" if b.into_betas else b.option
            raise ConfigError(
                f"{type(optimizer).__name__} takes {option} only as a Python number, so a schedule of it would make "
                f"the compiled step recompile at every update; leave {option} unscheduled, or run without compile",
                path,
            )
