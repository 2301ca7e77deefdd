"""``optiplug diff A B``: two recipes of any dialects compared update by update; status 3 when they differ."""

from __future__ import annotations

import argparse

from optiplug.cli.command import Command
from optiplug.cli.parser import DEFAULT_MODEL, add_run_options

EXIT_DIFFERENT = 3


def non_negative_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_pair_options(sub: argparse.ArgumentParser) -> None:
    """``--tolerance`` for ``diff`` and the two-config ``plot``."""
    from optiplug.tooling.compare import DEFAULT_TOLERANCE

    sub.add_argument(
        "--tolerance",
        type=non_negative_float,
        default=DEFAULT_TOLERANCE,
        metavar="T",
        help="largest difference allowed, as a fraction of each option's largest value "
        f"(default {DEFAULT_TOLERANCE:g})",
    )


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``A``, ``B``, ``--model``, ``--tolerance``, ``--output`` and the run options (shared by both)."""
    from optiplug.tooling.demo import EXAMPLE_MODELS

    sub.add_argument("config", metavar="A", help="the first config (.yaml, .yml, .json or MMCV-style .py)")
    sub.add_argument("other", metavar="B", help="the second config, of any dialect")
    sub.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="MODEL",
        help=f"the model both are built for: {', '.join(EXAMPLE_MODELS)} (default {DEFAULT_MODEL}) "
        "or package.module:factory",
    )
    add_pair_options(sub)
    sub.add_argument("-o", "--output", metavar="PNG", help="also draw both recipes' curves, one panel per option")
    sub.add_argument("--log", action="store_true", help="logarithmic lr axis in the PNG")
    add_run_options(sub)


def compared(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Both configs built for the model the arguments name, compared."""
    from optiplug.cli.arguments import build_with, recipe_from, require_length, run_figures
    from optiplug.tooling.compare import compare
    from optiplug.tooling.factories import model_from

    model = model_from(args.model)
    figures = run_figures(args)
    builds = []
    for config in (args.config, args.other):
        translated = recipe_from(config, figures, args.dialect)
        require_length(translated.recipe, figures)
        builds.append(build_with(translated, model, figures))
    return compare(builds[0], builds[1], (args.config, args.other))


def run(args: argparse.Namespace) -> int:
    """Print where the two recipes differ; draw them when ``-o`` is given; status 3 when they differ."""
    from optiplug.tooling.compare import comparison_figure, save

    comparison = compared(args)
    for line in comparison.lines(args.tolerance):
        print(line)
    if args.output:
        print(f"wrote {save(comparison_figure(comparison, args.tolerance, args.log), args.output)}")
    return EXIT_DIFFERENT if comparison.differs(args.tolerance) else 0


COMMAND = Command(
    "diff",
    "Compare two configs of any dialects update by update on one model: the first update where each option "
    f"differs and the largest difference; exit status {EXIT_DIFFERENT} when they differ beyond --tolerance.",
    "  optiplug diff old_mmcv.py new.yaml --steps-per-epoch 500 --tolerance 1e-6\n"
    "  optiplug diff vissl.yaml converted.yaml -o both.png",
    configure_parser,
    run,
)
