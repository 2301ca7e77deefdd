"""The argument parser of ``optiplug``, built from its commands, and the options commands share."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

from optiplug.cli.command import Command
from optiplug.version import __version__

PROG = "optiplug"
HELP_WIDTH = 100
DEFAULT_MODEL = "resnet_like"
EPILOG = (
    "examples:\n  optiplug plugins\n  optiplug check recipe.yaml\n  optiplug plot recipe.yaml -o lr.png\n"
    "  optiplug --import my_optimizers check recipe.yaml\n"
    "  optiplug convert vissl.yaml --to canonical -o recipe.yaml --steps-per-epoch 500\n"
    "  optiplug run\n\n'optiplug COMMAND --help' shows each command's options."
)


def make_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The argument parser of the ``optiplug`` command, with a subcommand for each of ``commands``.

    A subcommand's parsed arguments carry its ``run`` as ``handler``.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Optimizers, param groups and schedules from declarative configs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a config or plugin error")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a module name or a .py file) before the command, for its "
        "@optiplug.register_optimizer / register_schedule registrations; repeatable",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    # also accepted after the subcommand; SUPPRESS keeps the subparser from resetting the main parser's value
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--import", dest="late_imports", action="append", metavar="MODULE", help=argparse.SUPPRESS)
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            parents=[common],
            help=command.summary,
            description=textwrap.fill(command.summary, HELP_WIDTH),
            epilog="example:\n" + command.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=command.run)
        command.configure_parser(sub)
    return parser


def positive_int(text: str) -> int:
    """An argparse type: a whole number > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_run_options(sub: argparse.ArgumentParser) -> None:
    """The run figures (read by :func:`optiplug.cli.arguments.run_figures`) and ``--dialect``."""
    run = sub.add_argument_group("the run (default: the recipe's run section)")
    run.add_argument("--steps-per-epoch", type=positive_int, metavar="N", help="optimizer updates per epoch")
    run.add_argument("--epochs", type=positive_int, metavar="N", help="number of epochs")
    run.add_argument("--batch-size", type=positive_int, metavar="N", help="samples per device per step (lr scaling)")
    run.add_argument("--world-size", type=positive_int, metavar="N", help="number of devices (lr scaling)")
    run.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="scheduled options as 0-dim tensors, for torch.compile of the step (the recipe's run.compile)",
    )
    run.add_argument("--dialect", metavar="D", help="force the config dialect: canonical, vissl, mmcv, ...")


def add_config_and_model(sub: argparse.ArgumentParser, model_use: str = "the example model the rules apply to") -> None:
    """The ``CONFIG`` argument and ``--model``, the example model (``model_use`` says what it is for)."""
    from optiplug.tooling.demo import EXAMPLE_MODELS

    sub.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or MMCV-style .py config")
    sub.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME",
        help=f"{model_use}: {', '.join(EXAMPLE_MODELS)} (default {DEFAULT_MODEL})",
    )
