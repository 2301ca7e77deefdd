"""From parsed arguments to library calls: the run figures, the recipe, its length and the build.

The run options (``--steps-per-epoch``, ``--epochs``, ``--batch-size``, ``--world-size``)
travel as one :class:`~optiplug.recipe.model.RunConfig`, the figures ``build()`` takes;
only the calls into the library spell them out.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import attrs

from optiplug.cli.rendering import reported_warnings
from optiplug.cli.terms import in_cli_terms
from optiplug.errors import ConfigError

if TYPE_CHECKING:
    from optiplug.engine.built_result import Built
    from optiplug.engine.dialects import Translated
    from optiplug.recipe.model import Recipe, RunConfig


def run_figures(args: argparse.Namespace) -> RunConfig:
    """The run figures the command line gives (None where an option is absent)."""
    from optiplug.engine.run_figures import given_figures

    figures = given_figures(
        steps_per_epoch=args.steps_per_epoch,
        num_epochs=args.epochs,
        batch_size_per_device=args.batch_size,
        world_size=args.world_size,
    )
    return attrs.evolve(figures, compile=getattr(args, "compile", None))


def no_figures() -> RunConfig:
    """No run figures: what a recipe that must carry its own run is built with."""
    from optiplug.recipe.model import RunConfig

    return RunConfig()


def recipe_from(config: Any, figures: RunConfig, dialect: str | None, *, show_warnings: bool = True) -> Translated:
    """The canonical recipe of ``config`` (a path), translated from ``dialect`` (None: detected) with ``figures``.

    The translation's warnings are shown as ``optiplug: warning:`` lines (or dropped).
    """
    from optiplug.engine.dialects import translate
    from optiplug.plugin_system.host import get_registry

    with reported_warnings(show_warnings):
        return translate(config, figures, dialect=dialect, registry=get_registry())


def build_with(translated: Translated, model: Any, figures: RunConfig, *, show_warnings: bool = True) -> Built:
    """Build the translated recipe with the run ``figures``; warnings shown as ``optiplug: warning:`` lines.

    Errors name the keys of the config's own dialect, as ``optiplug.build`` does.
    """
    from optiplug.engine.build import build_recipe
    from optiplug.engine.tolerance import Tolerance
    from optiplug.plugin_system.host import get_registry

    with reported_warnings(show_warnings):
        try:
            tolerance = Tolerance.of(translated.dialect, translated.in_user_terms)  # MMCV's leniency, as build()
            return build_recipe(translated.recipe, model, figures, get_registry(), tolerance)
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


EPOCH_PROBES = (12, 60)
"""Updates per epoch tried when a config gives its epochs but not the updates in one.

The curves are built with each; when their values at the start of every epoch agree,
the schedules count epochs (or fractions of the run) and the curves per epoch are exact
whatever the dataset's size. When they differ, a schedule counts updates (a warmup of
500 iterations) and the updates per epoch must be given.
"""


@attrs.frozen
class Planned:
    """What ``check`` and ``plot`` build: the translated recipe, the build, the run figures used.

    ``per_epoch`` is True when the config gives its epochs but not the updates per
    epoch: ``built`` then used a nominal number of updates per epoch
    (:data:`EPOCH_PROBES`), and only values at the start of each epoch mean anything.
    """

    translated: Translated
    built: Built
    figures: RunConfig
    per_epoch: bool = False
    resolved: Recipe | None = None

    def resolved_recipe(self) -> Recipe | None:
        """The recipe ``check`` prints: :func:`resolved_recipe`, the nominal updates per epoch left out.

        None when the resolved recipe itself depends on the updates per epoch (a dialect
        that turned epochs into updates).
        """
        return self.resolved if self.per_epoch else resolved_recipe(self.built, self.figures)


def planned_build(args: argparse.Namespace, model: Any, *, need_length: bool) -> Planned:
    """Translate and build ``args.config`` with the command line's run figures.

    A config that gives its epochs but not its updates per epoch is built with nominal
    ones (:data:`EPOCH_PROBES`); with ``need_length`` (``plot``), a config without a
    length, or whose schedules count updates, is a ConfigError asking for the flags
    (one without schedules is drawn over one epoch: its values are constant).
    """
    figures = run_figures(args)
    try:
        translated = recipe_from(args.config, figures, args.dialect)
    except ConfigError as exc:  # a dialect that needs the updates per epoch to translate (MMCV's EpochBasedRunner)
        if figures.steps_per_epoch is not None or "--steps-per-epoch" not in in_cli_terms(str(exc)):
            raise
        return _per_epoch(args, model, figures, exc, compare=need_length)
    recipe = translated.recipe
    missing = missing_length(recipe, figures)
    if need_length and missing and not has_schedules(recipe):  # every value constant: one epoch shows them
        epochs = figures.num_epochs or recipe.run.num_epochs or 1
        return _per_epoch(args, model, attrs.evolve(figures, num_epochs=epochs), None, compare=False)
    if missing == ["--steps-per-epoch"] and (need_length or has_schedules(recipe)):
        return _per_epoch(args, model, figures, None, compare=need_length)
    if need_length or has_schedules(recipe):
        require_length(recipe, figures)
    return Planned(translated, build_with(translated, model, figures), figures)


def _per_epoch(
    args: argparse.Namespace, model: Any, figures: RunConfig, cause: ConfigError | None, *, compare: bool
) -> Planned:
    """Built with each of :data:`EPOCH_PROBES` updates per epoch.

    With ``compare``, a ConfigError when the curves at the epochs' starts differ.
    """
    from optiplug.tooling.curves import compute_curves

    planned: list[Planned] = []
    for probe in EPOCH_PROBES:
        probed = attrs.evolve(figures, steps_per_epoch=probe)
        translated = recipe_from(args.config, probed, args.dialect, show_warnings=False)
        if missing_length(translated.recipe, probed):
            if cause is not None:
                raise cause
            require_length(translated.recipe, figures)
        built = build_with(translated, model, probed, show_warnings=not planned)
        planned.append(Planned(translated, built, figures, per_epoch=True))
    resolved = [without_updates_per_epoch(resolved_recipe(p.built, figures)) for p in planned]
    first, second = (epoch_starts(compute_curves(p.built)) for p in planned) if compare else ({}, {})
    if first.keys() != second.keys() or any(not torch_close(first[k], second[k]) for k in first):
        raise ConfigError(
            "the config gives the run's epochs but not the updates in one, and its schedules count updates "
            "(their values at the start of each epoch change with the updates per epoch): pass --steps-per-epoch"
        )
    return attrs.evolve(planned[-1], resolved=resolved[0] if resolved[0] == resolved[1] else None)


def without_updates_per_epoch(recipe: Recipe) -> Recipe:
    """``recipe`` with no ``run.steps_per_epoch``."""
    return attrs.evolve(recipe, run=attrs.evolve(recipe.run, steps_per_epoch=None))


def epoch_starts(curves: Any) -> dict[str, Any]:
    """Each option's values at the start of every epoch: ``(groups, epochs)`` tensors."""
    per_epoch = curves.clock.steps_per_epoch
    return {option: values[:, ::per_epoch] for option, values in curves.values.items()}


def torch_close(a: Any, b: Any) -> bool:
    """Whether two tensors of curve values agree (to rounding)."""
    import torch

    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-9, atol=1e-12))


def per_epoch_curves(built: Built) -> Any:
    """The curves of a build made with nominal updates per epoch: one value per epoch, at its start."""
    import torch

    from optiplug.plugin_system.records import Clock
    from optiplug.tooling.curves import compute_curves

    curves = compute_curves(built)
    values = epoch_starts(curves)
    epochs = next(iter(values.values())).shape[1]

    return attrs.evolve(
        curves, steps=torch.arange(epochs), values=values, clock=Clock(steps_per_epoch=1, total_steps=epochs)
    )
