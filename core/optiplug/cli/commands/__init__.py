"""The built-in commands of ``optiplug``, one module each; every module exposes its ``COMMAND``."""

from __future__ import annotations

from optiplug.cli.command import Command
from optiplug.cli.commands import check, convert, diff, explain, find_lr, plot, plugins, run, schema


def builtin_commands() -> list[Command]:
    """Every built-in command, in the order ``optiplug --help`` lists them."""
    return [
        plugins.COMMAND,
        check.COMMAND,
        convert.COMMAND,
        plot.COMMAND,
        run.COMMAND,
        schema.COMMAND,
        explain.COMMAND,
        find_lr.COMMAND,
        diff.COMMAND,
    ]
