"""The ``optiplug`` command: ``plugins``, ``check``, ``convert``, ``plot``, ``run`` and ``schema``.

The package, by concern:

- :mod:`~optiplug.cli.main`: ``main(argv)`` and the error policy (exit statuses, one-line errors, ``--debug``);
- :mod:`~optiplug.cli.parser`: the argument parser, built from a list of commands, and the shared options;
- :mod:`~optiplug.cli.command`: :class:`~optiplug.cli.command.Command`, the record a subcommand is;
- :mod:`~optiplug.cli.commands`: the built-in commands, one module each;
- :mod:`~optiplug.cli.arguments`: parsed arguments to library calls (the recipe, the run figures, the build);
- :mod:`~optiplug.cli.rendering`: tables, summaries and the console.

rich, matplotlib and yaml are imported inside the commands that use them.
"""

from __future__ import annotations

from optiplug.cli.main import main

__all__ = ["main"]
