"""From parsed arguments to library calls: the run figures, the recipe, its length and the build.

The run options (``--steps-per-epoch``, ``--epochs``, ``--batch-size``, ``--world-size``)
travel as one :class:`~optiplug.recipe.model.RunConfig`, the figures ``build()`` takes;
only the calls into the library spell them out.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from optiplug.cli.rendering import reported_warnings
from optiplug.errors import ConfigError

if TYPE_CHECKING:
    from optiplug.engine.built_result import Built
    from optiplug.engine.dialects import Translated
    from optiplug.recipe.model import Recipe, RunConfig


def run_figures(args: argparse.Namespace) -> RunConfig:
    """The run figures the command line gives (None where an option is absent)."""
    from optiplug.engine.run_figures import given_figures

    return given_figures(
        steps_per_epoch=args.steps_per_epoch,
        num_epochs=args.epochs,
        batch_size_per_device=args.batch_size,
        world_size=args.world_size,
    )


def no_figures() -> RunConfig:
    """No run figures: what a recipe that must carry its own run is built with."""
    from optiplug.recipe.model import RunConfig

    return RunConfig()


def recipe_from(config: Any, figures: RunConfig, dialect: str | None) -> Translated:
    """The canonical recipe of ``config`` (a path), translated from ``dialect`` (None: detected) with ``figures``."""
    from optiplug.engine.dialects import translate
    from optiplug.plugin_system.host import get_registry

    return translate(config, figures, dialect=dialect, registry=get_registry())


def build_with(translated: Translated, model: Any, figures: RunConfig, *, show_warnings: bool = True) -> Built:
    """Build the translated recipe with the run ``figures``; warnings shown as ``optiplug: warning:`` lines.

    Errors name the keys of the config's own dialect, as ``optiplug.build`` does.
    """
    from optiplug.engine.build import build_recipe
    from optiplug.plugin_system.host import get_registry

    with reported_warnings(show_warnings):
        try:
            return build_recipe(translated.recipe, model, figures, get_registry())
        except ConfigError as exc:
            raise translated.in_user_terms(exc) from None


def has_schedules(recipe: Recipe) -> bool:
    """Whether the recipe schedules anything (then it needs the run's length)."""
    return bool(recipe.schedules) or any(rule.schedules for rule in recipe.rules)


def missing_length(recipe: Recipe, figures: RunConfig) -> list[str]:
    """The options still needed for the run's length (none when the recipe or the figures give it)."""
    run = recipe.run
    per_epoch = figures.steps_per_epoch or run.steps_per_epoch
    epochs = figures.num_epochs or run.num_epochs
    if run.total_steps or (per_epoch and epochs):
        return []
    return [flag for flag, value in (("--steps-per-epoch", per_epoch), ("--epochs", epochs)) if not value]


def require_length(recipe: Recipe, figures: RunConfig) -> None:
    """A ConfigError naming the missing options when neither the recipe nor the figures give the run's length."""
    missing = missing_length(recipe, figures)
    if missing:
        raise ConfigError(
            "the recipe does not say how long the run is (run.num_epochs, run.steps_per_epoch): "
            f"pass {' and '.join(missing)}"
        )


def resolved_recipe(built: Built, figures: RunConfig) -> Recipe:
    """The recipe ``built`` was made from, lr scaling applied (and so removed), the run ``figures`` in ``run``.

    Saved to a file, it builds the same optimizer and schedules with no arguments.
    """
    import attrs

    from optiplug.tooling.conversion import with_run_figures

    return with_run_figures(
        attrs.evolve(built.recipe, lr_scaling=None),
        steps_per_epoch=figures.steps_per_epoch,
        num_epochs=figures.num_epochs,
        batch_size_per_device=figures.batch_size_per_device,
        world_size=figures.world_size,
    )
