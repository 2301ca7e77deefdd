"""The record a subcommand of ``optiplug`` is: its name, help and arguments, and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import attrs


@attrs.frozen
class Command:
    """A subcommand: ``optiplug NAME ...``.

    ``configure_parser`` adds the command's arguments to its subparser; ``run`` takes the
    parsed arguments and returns the exit status. ``summary`` is the line ``optiplug
    --help`` shows (and the description of ``optiplug NAME --help``), ``examples`` the
    indented command lines shown under ``example:``.
    """

    name: str
    summary: str
    examples: str
    configure_parser: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
