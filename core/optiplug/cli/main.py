"""``main(argv)``: parse, run the command, and turn what goes wrong into an exit status.

A configuration or plugin problem ends the command with one line, ``optiplug: error:
<message>``, and status 1 (``--debug`` shows the traceback instead); Ctrl-C ends it with
``optiplug: interrupted`` and status 130; a closed pipe on stdout ends it silently.
Usage mistakes are argparse's, with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from optiplug.cli.commands import builtin_commands
from optiplug.cli.parser import PROG, make_parser
from optiplug.errors import ConfigError, OptiplugError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = make_parser(builtin_commands())
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: argparse has printed what to say
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    return run_command(args.handler, args)


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``handler(args)``'s exit status, or that of the error it raised (re-raised under ``--debug``)."""
    try:
        return handler(args)
    except BrokenPipeError:  # `optiplug schema | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C during `optiplug run`: one line, the shell's status for SIGINT
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OptiplugError as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    """The error's message on one line (several config problems joined by ``;``)."""
    if isinstance(exc, ConfigError) and len(exc.items) > 1:
        return f"{len(exc.items)} problems in the config: " + "; ".join(f"{p}: {m}" if p else m for p, m in exc.items)
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
