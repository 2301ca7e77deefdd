"""``optiplug plot``: every option's curve per param group to a PNG, and the lr to the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

from optiplug.cli.command import Command
from optiplug.cli.parser import add_config_and_model, add_run_options


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``CONFIG``, ``--model``, ``--output``, ``--log`` and the run options."""
    from optiplug.cli.commands.diff import add_pair_options

    add_config_and_model(sub)
    sub.add_argument("other", metavar="B", nargs="?", help="a second config: both on one figure per option (as diff)")
    add_pair_options(sub)
    sub.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the picture, as .png, .svg, .pdf or .jpg by its extension (default: CONFIG-curves.png)",
    )
    sub.add_argument("--log", action="store_true", help="logarithmic lr axis")
    add_run_options(sub)


def run(args: argparse.Namespace) -> int:
    """Build the config on the example model, plot its curves to the PNG and summarise them in the terminal."""
    from optiplug.cli.arguments import per_epoch_curves, planned_build
    from optiplug.cli.rendering import console, groups_count, reported_warnings, run_summary
    from optiplug.tooling.curves import compute_curves
    from optiplug.tooling.demo import example_model
    from optiplug.tooling.plotting import curves_figure, figure_format, save_figure, terminal_summary

    if args.other is not None:
        return plot_pair(args)
    output_path = args.output or f"{Path(args.config).stem}-curves.png"
    figure_format(output_path)  # an extension that cannot be written is refused before any work
    model = example_model(args.model)
    planned = planned_build(args, model, need_length=True)
    built, figures, per_epoch = planned.built, planned.figures, planned.per_epoch
    with reported_warnings():  # a metric-driven schedule is drawn without reductions: said so
        curves = per_epoch_curves(built) if per_epoch else compute_curves(built)
    title = (
        f"{Path(args.config).name}: {type(built.optimizer).__name__}, {groups_count(built)} "
        f"({args.model})\n{run_summary(built, figures, per_epoch=per_epoch)}"
    )
    figure = curves_figure(curves, built.groups, title=title, log_lr=args.log, per_epoch=per_epoch)
    output = save_figure(figure, output_path)
    width = max(20, min(72, console().width - 16))
    if per_epoch:
        print("per epoch: the config gives the epochs, not the updates in one (--steps-per-epoch: per-update curves)")
    for line in terminal_summary(curves, built.groups, width=width, unit="epoch" if per_epoch else "update"):
        print(line)
    print(f"wrote {output}")
    return 0


def plot_pair(args: argparse.Namespace) -> int:
    """``plot A B``: both recipes on one figure per option; the differences printed; status 3 when they differ."""
    from optiplug.cli.commands.diff import EXIT_DIFFERENT, compared
    from optiplug.tooling.compare import comparison_figure, save

    comparison = compared(args)
    for line in comparison.lines(args.tolerance):
        print(line)
    default = f"{Path(args.config).stem}-vs-{Path(args.other).stem}.png"
    print(f"wrote {save(comparison_figure(comparison, args.tolerance, args.log), args.output or default)}")
    return EXIT_DIFFERENT if comparison.differs(args.tolerance) else 0


COMMAND = Command(
    "plot",
    "Plot lr, momentum (or beta1) and weight decay of every param group at every update, to a PNG and to the terminal; "
    "with two configs, both on one figure per option (see diff).",
    "  optiplug plot recipe.yaml -o curves.png --epochs 90 --steps-per-epoch 500 --log\n"
    "  optiplug plot old_mmcv.py new.yaml -o both.png --steps-per-epoch 500",
    configure_parser,
    run,
)
