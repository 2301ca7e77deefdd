"""``main(argv)``: parse, run the command, and turn what goes wrong into an exit status.

A configuration or plugin problem ends the command with ``optiplug: error: <message>``
and status 1 (``--debug`` shows the traceback instead): one line, or, when a config has
several problems, a line saying how many and one ``  - path: message`` line each. The
messages are in the command line's terms (``--batch-size``, not ``batch_size_per_device``:
:mod:`~optiplug.cli.terms`). Ctrl-C ends it with ``optiplug: interrupted`` and status
130; a closed pipe on stdout ends it silently. Usage mistakes are argparse's, with
status 2.

``--import MODULE`` (repeatable, before or after the command) imports the user's module
first, so its ``@optiplug.register_optimizer`` registrations are known; a module that
cannot be imported is one error line naming it and the flag.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from optiplug.cli.commands import builtin_commands
from optiplug.cli.parser import PROG, make_parser
from optiplug.cli.terms import in_cli_terms
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
    imports = [*args.imports, *(getattr(args, "late_imports", None) or [])]
    command: Callable[[argparse.Namespace], int] = args.handler

    def handler(parsed: argparse.Namespace) -> int:
        for module in imports:
            import_user_module(module)
        return command(parsed)

    return run_command(handler, args)


class ImportFailed(OptiplugError):
    """A module given to ``--import`` could not be imported."""


def import_user_module(module: str) -> None:
    """Import ``module`` (a dotted name, found from the current directory too, or a ``.py`` file)."""
    from optiplug.plugin_system.manager import short_error

    path = Path(module)
    try:
        if module.endswith(".py") or os.sep in module:
            if not path.is_file():
                raise ImportFailed(f"--import {module}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportFailed(f"--import {module}: not a Python module")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = loaded
            spec.loader.exec_module(loaded)
            return
        if os.getcwd() not in sys.path:  # as `python -m` would: the user's module is usually beside them
            sys.path.insert(0, os.getcwd())
        importlib.import_module(module)
    except ImportFailed:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(f"{exc.name}.")):
            raise ImportFailed(
                f"--import {module}: no module named {exc.name!r} in the current directory or on PYTHONPATH "
                "(give a module name, my_project.optimizers, or a file, path/to/optimizers.py)"
            ) from exc
        raise ImportFailed(f"--import {module}: importing it failed: {short_error(exc)}") from exc
    except Exception as exc:
        raise ImportFailed(f"--import {module}: importing it failed: {short_error(exc)}") from exc


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
        print(f"{PROG}: error: {error_text(exc)}", file=sys.stderr)
        return EXIT_ERROR


def error_text(exc: BaseException) -> str:
    """The error's message in the command line's terms.

    One line; several config problems as a count, then one ``  - path: message`` line each.
    """
    if isinstance(exc, ConfigError) and len(exc.items) > 1:
        lines = [in_cli_terms(one_line(f"{p}: {m}" if p else m)) for p, m in exc.items]
        return f"{len(lines)} problems in the config:\n" + "\n".join(f"  - {line}" for line in lines)
    return in_cli_terms(one_line(str(exc)))


def one_line(message: str) -> str:
    """``message``'s lines joined by spaces."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
