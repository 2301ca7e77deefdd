"""``optiplug explain``: every parameter's matching rules, the rule each option came from, and a lint of the rules."""

from __future__ import annotations

import argparse
from pathlib import Path

from optiplug.cli.command import Command
from optiplug.cli.parser import DEFAULT_MODEL, add_run_options

EXIT_FINDINGS = 3


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``CONFIG``, ``--model`` (an example model or ``package.module:factory``), ``--only``, ``--strict``."""
    from optiplug.tooling.demo import EXAMPLE_MODELS

    sub.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or MMCV-style .py config")
    sub.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="MODEL",
        help=f"an example model ({', '.join(EXAMPLE_MODELS)}; default {DEFAULT_MODEL}) "
        "or package.module:factory, called with no arguments",
    )
    sub.add_argument("--only", metavar="REGEX", help="show only the parameters whose name matches REGEX")
    sub.add_argument("--lint", action="store_true", help="show only the lint findings")
    sub.add_argument("-o", "--output", metavar="PNG", help="also draw which rule matched which parameter")
    sub.add_argument("--strict", action="store_true", help=f"exit with status {EXIT_FINDINGS} when there are findings")
    add_run_options(sub)


def run(args: argparse.Namespace) -> int:
    """Build the config for the model, print each parameter's explanation, then the findings."""
    import re

    from optiplug.cli.arguments import build_with, recipe_from, run_figures
    from optiplug.engine.dialects import foreign_path
    from optiplug.engine.explain import explain
    from optiplug.errors import ConfigError
    from optiplug.tooling.factories import model_from

    if args.only:
        try:
            re.compile(args.only)
        except re.error as exc:
            raise ConfigError(f"--only: invalid regular expression {args.only!r}: {exc}") from None
    model = model_from(args.model)
    figures = run_figures(args)
    translated = recipe_from(args.config, figures, args.dialect)
    built = build_with(translated, model, figures, show_warnings=False)
    paths = translated.dialect.paths if translated.dialect is not None else {}
    report = explain(built, model, rename=lambda path: foreign_path(path, paths) if paths else path)
    print(f"{args.config} on {args.model}: {report.algorithm}")
    lines = report.lines(args.only)
    print("\n".join(lines[-1 - len(report.findings) :] if args.lint else lines[1:]))
    if args.output:
        from optiplug.tooling.explain_plot import explanation_figure, save

        title = f"{Path(args.config).name} on {args.model}: {report.algorithm}"
        print(f"wrote {save(explanation_figure(report, title), args.output)}")
    return EXIT_FINDINGS if args.strict and report.findings else 0


COMMAND = Command(
    "explain",
    "For every parameter: the rules that matched it, the rule each option came from, its group's options at "
    "update 0 and at the end; then a lint of the rules (rules matching nothing or shadowed, decay on 1-D "
    "parameters and norms, unread multipliers, frozen and shared parameters).",
    "  optiplug explain recipe.yaml --model vit_like --only 'head|norm'\n"
    "  optiplug explain mmcv_config.py --model mypkg.models:make_model --lint --strict",
    configure_parser,
    run,
)
