"""``optiplug run``: the demo training run with a progress bar, then the curves and the loss as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optiplug.cli.command import Command
from optiplug.cli.parser import add_run_options

if TYPE_CHECKING:
    from optiplug.engine.built_result import Built
    from optiplug.recipe.model import Recipe, RunConfig

DEMO_MODEL = "mlp"
DEMO_EPOCHS, DEMO_STEPS_PER_EPOCH, DEMO_BATCH = 5, 40, 64


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """An optional ``CONFIG``, ``--output``, ``--log`` and the run options."""
    sub.add_argument("config", metavar="CONFIG", nargs="?", help="a config (default: the embedded recipe)")
    sub.add_argument("-o", "--output", metavar="DIR", default=".", help="directory for optiplug-run.png (default: .)")
    sub.add_argument("--log", action="store_true", help="logarithmic lr axis")
    add_run_options(sub)


def run(args: argparse.Namespace) -> int:
    """Train the demo model with the recipe, plot its curves and the loss, and report the final loss."""
    from optiplug.cli.arguments import build_with, recipe_from, run_figures
    from optiplug.cli.rendering import run_summary
    from optiplug.tooling.curves import compute_curves
    from optiplug.tooling.demo import SyntheticTask, example_model, micro_batches_per_epoch
    from optiplug.tooling.plotting import curves_figure, save_png
    from optiplug.tooling.recipes import recipe_path

    config = args.config or recipe_path()
    given = run_figures(args)
    translated = recipe_from(config, given, args.dialect)
    recipe = translated.recipe
    figures = demo_figures(recipe, given)
    batch_size = figures.batch_size_per_device or DEMO_BATCH  # always set by demo_figures
    model = example_model(DEMO_MODEL)
    built = build_with(translated, model, figures)
    task = SyntheticTask.make(micro_batches_per_epoch(built) * batch_size)
    result = train_with_progress(built, model, task, batch_size)
    curves = compute_curves(built)
    title = f"optiplug run: {Path(config).name} on synthetic data ({DEMO_MODEL})\n{run_summary(built, figures)}"
    figure = curves_figure(curves, built.groups, title=title, log_lr=args.log, losses=result.losses)
    output = save_png(figure, Path(args.output) / "optiplug-run.png")
    print(
        f"final loss {result.final_loss:.4f} on the whole synthetic set (accuracy {result.accuracy:.1%}); "
        f"first update {result.losses[0]:.4f}, last update {result.losses[-1]:.4f}"
    )
    print(f"wrote {output}")
    return 0


def demo_figures(recipe: Recipe, given: RunConfig) -> RunConfig:
    """The ``given`` figures, else the recipe's, else the demo's (its length only when the recipe has none)."""
    import attrs

    run = recipe.run
    return attrs.evolve(
        given,
        steps_per_epoch=given.steps_per_epoch
        or run.steps_per_epoch
        or (None if run.total_steps else DEMO_STEPS_PER_EPOCH),
        num_epochs=given.num_epochs or run.num_epochs or (None if run.total_steps else DEMO_EPOCHS),
        batch_size_per_device=given.batch_size_per_device or run.batch_size_per_device or DEMO_BATCH,
    )


def train_with_progress(built: Built, model: Any, task: Any, batch_size: int) -> Any:
    """Train ``model`` on ``task`` with a rich progress bar showing the loss and the lr; the demo's result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from optiplug.cli.rendering import console, reported_warnings
    from optiplug.tooling.curves import run_updates
    from optiplug.tooling.demo import train

    columns = (
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.4g}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console()) as progress:
        bar = progress.add_task("train", total=run_updates(built.clock), loss=float("nan"), lr=0.0)

        def advance(_update: int, loss: float) -> None:
            progress.update(bar, advance=1, loss=loss, lr=float(built.optimizer.param_groups[0]["lr"]))

        with reported_warnings():
            return train(built, model, task, batch_size, advance)


COMMAND = Command(
    "run",
    "Train a small model on synthetic data with a recipe (default: the embedded demo recipe); "
    "write the curves and the loss to a PNG.",
    "  optiplug run                       # the embedded default recipe\n  optiplug run recipe.yaml -o out/ --epochs 3",
    configure_parser,
    run,
)
