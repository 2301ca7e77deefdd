"""The ``optiplug`` command: ``plugins``, ``check``, ``convert``, ``plot``, ``run`` and ``schema``.

Each subcommand is a function of its parsed arguments returning the exit status.
A configuration or plugin problem ends the command with one line,
``optiplug: error: <message>``, and status 1 (``--debug`` shows the traceback instead).
rich, matplotlib and yaml are imported inside the subcommands that use them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from optiplug.errors import ConfigError, OptiplugError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from optiplug.engine.built_result import Built, GroupSummary
    from optiplug.recipe.model import Recipe

PROG = "optiplug"
CANONICAL = "canonical"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
HELP_WIDTH = 100
DEFAULT_MODEL = "resnet_like"
DEMO_MODEL = "mlp"
DEMO_EPOCHS, DEMO_STEPS_PER_EPOCH, DEMO_BATCH = 5, 40, 64
PROVIDES_KEYS = {
    "optimizer": "optimizers",
    "schedule": "schedules",
    "param rule kind": "rule_kinds",
    "scaling rule": "scaling_rules",
    "optimizer wrapper": "wrappers",
    "config dialect": "dialects",
}

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: argparse has printed what to say
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    handler: Handler = args.handler
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


# -- the parser ------------------------------------------------------------------------------------------------


class Command(NamedTuple):
    """A subcommand: its handler, one-line summary, examples for ``--help`` and its arguments."""

    name: str
    handler: Handler
    summary: str
    examples: str
    arguments: Callable[[argparse.ArgumentParser], None]


def commands() -> list[Command]:
    """Every subcommand, in the order ``optiplug --help`` lists them."""
    return [
        Command(
            "plugins",
            cmd_plugins,
            "List every plugin found: distribution, version, status and what it provides.",
            "  optiplug plugins\n  optiplug plugins --json | jq '.[] | select(.status != \"loaded\")'\n"
            "  OPTIPLUG_DISABLE_PLUGINS=larc optiplug plugins   # larc shown as blocked",
            _plugins_arguments,
        ),
        Command(
            "check",
            cmd_check,
            "Validate a config; print the resolved canonical recipe and the param groups of an example model.",
            "  optiplug check recipe.yaml --model vit_like\n"
            "  optiplug check vissl_config.yaml --epochs 100 --steps-per-epoch 5000 --batch-size 32 --world-size 64",
            _check_arguments,
        ),
        Command(
            "convert",
            cmd_convert,
            "Write a config (VISSL, MMCV, canonical) as the canonical recipe, with the run figures in its run "
            "section; checks that it builds the same values at every update.",
            "  optiplug convert vissl.yaml --to canonical -o recipe.yaml --steps-per-epoch 5000 --batch-size 32 "
            "--world-size 64\n"
            "  optiplug convert configs/simclr.py -o simclr.yaml --steps-per-epoch 1252",
            _convert_arguments,
        ),
        Command(
            "plot",
            cmd_plot,
            "Plot lr, momentum (or beta1) and weight decay of every param group at every update, to a PNG "
            "and to the terminal.",
            "  optiplug plot recipe.yaml -o curves.png --epochs 90 --steps-per-epoch 500 --log",
            _plot_arguments,
        ),
        Command(
            "run",
            cmd_run,
            "Train a small model on synthetic data with a recipe (default: the embedded demo recipe); "
            "write the curves and the loss to a PNG.",
            "  optiplug run                       # the embedded default recipe\n"
            "  optiplug run recipe.yaml -o out/ --epochs 3",
            _run_arguments,
        ),
        Command(
            "schema",
            cmd_schema,
            "Print the JSON Schema of the canonical recipe, with every installed plugin's schedules, rules, "
            "wrappers and optimizers.",
            "  optiplug schema -o optiplug-recipe.schema.json\n"
            '  # then in VS Code settings: "yaml.schemas": {"optiplug-recipe.schema.json": "recipes/*.yaml"}',
            _schema_arguments,
        ),
    ]


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``optiplug`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Optimizers, param groups and schedules from declarative configs.",
        epilog="examples:\n  optiplug plugins\n  optiplug check recipe.yaml\n  optiplug plot recipe.yaml -o lr.png\n"
        "  optiplug convert vissl.yaml --to canonical -o recipe.yaml --steps-per-epoch 500\n"
        "  optiplug run\n\n'optiplug COMMAND --help' shows each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a config or plugin error")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    # also accepted after the subcommand; SUPPRESS keeps the subparser from resetting the main parser's value
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for command in commands():
        sub = subparsers.add_parser(
            command.name,
            parents=[common],
            help=command.summary,
            description=textwrap.fill(command.summary, HELP_WIDTH),
            epilog="example:\n" + command.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=command.handler)
        command.arguments(sub)
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


def _add_run_options(sub: argparse.ArgumentParser) -> None:
    run = sub.add_argument_group("the run (default: the recipe's run section)")
    run.add_argument("--steps-per-epoch", type=positive_int, metavar="N", help="optimizer updates per epoch")
    run.add_argument("--epochs", type=positive_int, metavar="N", help="number of epochs")
    run.add_argument("--batch-size", type=positive_int, metavar="N", help="samples per device per step (lr scaling)")
    run.add_argument("--world-size", type=positive_int, metavar="N", help="number of devices (lr scaling)")
    run.add_argument("--dialect", metavar="D", help="force the config dialect: canonical, vissl, mmcv, ...")


def _add_config_and_model(
    sub: argparse.ArgumentParser, model_use: str = "the example model the rules apply to"
) -> None:
    from optiplug.tooling.demo import EXAMPLE_MODELS

    sub.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or MMCV-style .py config")
    sub.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME",
        help=f"{model_use}: {', '.join(EXAMPLE_MODELS)} (default {DEFAULT_MODEL})",
    )


def _plugins_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def _check_arguments(sub: argparse.ArgumentParser) -> None:
    _add_config_and_model(sub)
    _add_run_options(sub)


def _convert_arguments(sub: argparse.ArgumentParser) -> None:
    _add_config_and_model(sub, model_use="the example model the conversion is checked on")
    sub.add_argument("--to", choices=(CANONICAL,), default=CANONICAL, help="the format to write (default: %(default)s)")
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (.yaml, .yml or .json) instead of stdout")
    _add_run_options(sub)


def _plot_arguments(sub: argparse.ArgumentParser) -> None:
    _add_config_and_model(sub)
    sub.add_argument("-o", "--output", metavar="PNG", help="where to write the PNG (default: CONFIG-curves.png)")
    sub.add_argument("--log", action="store_true", help="logarithmic lr axis")
    _add_run_options(sub)


def _run_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("config", metavar="CONFIG", nargs="?", help="a config (default: the embedded recipe)")
    sub.add_argument("-o", "--output", metavar="DIR", default=".", help="directory for optiplug-run.png (default: .)")
    sub.add_argument("--log", action="store_true", help="logarithmic lr axis")
    _add_run_options(sub)


def _schema_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


# -- shared helpers ----------------------------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


@contextmanager
def _reported_warnings(show: bool = True) -> Iterator[None]:
    """Show warnings raised while building (a rule matching nothing) as ``optiplug: warning:`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught if show else ():
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)


def _recipe(args: argparse.Namespace, config: Any) -> Recipe:
    from optiplug.engine.dialects import to_recipe

    return to_recipe(
        config,
        dialect=args.dialect,
        steps_per_epoch=args.steps_per_epoch,
        num_epochs=args.epochs,
        batch_size_per_device=args.batch_size,
        world_size=args.world_size,
    )


def missing_length(recipe: Recipe, args: argparse.Namespace) -> list[str]:
    """The options still needed for the run's length (none when the recipe or the arguments give it)."""
    run = recipe.run
    per_epoch = args.steps_per_epoch or run.steps_per_epoch
    epochs = args.epochs or run.num_epochs
    if run.total_steps or (per_epoch and epochs):
        return []
    return [flag for flag, value in (("--steps-per-epoch", per_epoch), ("--epochs", epochs)) if not value]


def require_length(recipe: Recipe, args: argparse.Namespace) -> None:
    """A ConfigError naming the missing options when neither the recipe nor the arguments give the run's length."""
    missing = missing_length(recipe, args)
    if missing:
        raise ConfigError(
            "the recipe does not say how long the run is (run.num_epochs, run.steps_per_epoch): "
            f"pass {' and '.join(missing)}"
        )


def _build(recipe: Recipe, model: Any, args: argparse.Namespace, *, show_warnings: bool = True) -> Built:
    from optiplug.engine.build import build

    with _reported_warnings(show_warnings):
        return build(
            recipe,
            model,
            steps_per_epoch=args.steps_per_epoch,
            num_epochs=args.epochs,
            batch_size_per_device=args.batch_size,
            world_size=args.world_size,
        )


def _has_schedules(recipe: Recipe) -> bool:
    return bool(recipe.schedules) or any(rule.schedules for rule in recipe.rules)


def _format_option(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_format_option(v) for v in value) + ")"
    return str(value)


def groups_table(groups: Sequence[GroupSummary], title: str) -> Table:
    """A rich table of param groups: index, rules, tensors, elements, options, a few parameter names."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column, justify in (("#", "right"), ("rules", "left"), ("tensors", "right"), ("elements", "right")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("options at update 0", overflow="fold")
    table.add_column("parameters", overflow="fold")
    for group in groups:
        options = "\n".join(f"{k}={_format_option(v)}" for k, v in group.options.items())
        names = ", ".join(group.names[:3]) + (f", … (+{len(group.names) - 3})" if len(group.names) > 3 else "")
        table.add_row(
            str(group.index),
            Text("\n".join(group.rules)),
            str(group.tensors),
            f"{group.elements:,}",
            Text(options),
            Text(names),
        )
    return table


def _run_summary(built: Built, args: argparse.Namespace | None = None) -> str:
    clock = built.clock
    if clock.total_steps is None:
        per_epoch = clock.steps_per_epoch
        return f"an open-ended run, {per_epoch} update{'s' if per_epoch != 1 else ''} per epoch"
    epochs = clock.total_steps / clock.steps_per_epoch
    length = f"{clock.total_steps:,.0f} updates = {epochs:g} epochs × {clock.steps_per_epoch:,} updates/epoch"
    return length + _batch_summary(built, args)


def _batch_summary(built: Built, args: argparse.Namespace | None) -> str:
    """``, batch 32 × 64 devices`` when the run's batch is known (it is what lr scaling used)."""
    run = built.recipe.run
    per_device = (args.batch_size if args else None) or run.batch_size_per_device
    world = (args.world_size if args else None) or run.world_size or 1
    if per_device is None:
        return ""
    return f", batch {per_device}" + (f" × {world} devices" if world > 1 else "")


def resolved_recipe(built: Built, args: argparse.Namespace) -> Recipe:
    """The recipe ``built`` was made from, lr scaling applied (and so removed), the run figures in ``run``.

    Saved to a file, it builds the same optimizer and schedules with no arguments.
    """
    import attrs

    from optiplug.tooling.conversion import with_run_figures

    return with_run_figures(
        attrs.evolve(built.recipe, lr_scaling=None),
        steps_per_epoch=args.steps_per_epoch,
        num_epochs=args.epochs,
        batch_size_per_device=args.batch_size,
        world_size=args.world_size,
    )


# -- the subcommands -------------------------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    """``optiplug plugins``: every plugin, where it comes from, whether it loaded, what it provides."""
    from optiplug.plugin_system.host import get_registry

    registry = get_registry()
    rows = []
    for plugin in sorted(registry.plugins, key=lambda p: p.name):
        provides = {PROVIDES_KEYS.get(k, k): v for k, v in registry.provided_by(plugin.name).items()}
        rows.append(
            {
                "name": plugin.name,
                "distribution": plugin.distribution,
                "version": plugin.version,
                "status": plugin.status,
                "provides": provides,
                "error": plugin.error,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _console().print(_plugins_table(rows))
    return 0


def _plugins_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="optiplug plugins", title_justify="left", show_lines=True)
    for column in ("name", "distribution", "version", "status", "provides"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = Text(row["status"], style={"loaded": "green", "blocked": "yellow"}.get(row["status"], "bold red"))
        provides = "\n".join(f"{kind.replace('_', ' ')}: {', '.join(names)}" for kind, names in row["provides"].items())
        if row["error"]:
            provides = f"{provides}\nerror: {row['error']}".strip()
        table.add_row(row["name"], row["distribution"], row["version"] or "-", status, Text(provides or "-"))
    return table


def cmd_check(args: argparse.Namespace) -> int:
    """``optiplug check``: validate, print the resolved recipe as YAML and the groups of an example model."""
    from optiplug.tooling.conversion import recipe_yaml
    from optiplug.tooling.demo import example_model

    model = example_model(args.model)
    recipe = _recipe(args, args.config)
    if _has_schedules(recipe):
        require_length(recipe, args)
    built = _build(recipe, model, args)
    header = f"{args.config}: the resolved canonical recipe (after dialect translation and lr scaling)"
    print(recipe_yaml(resolved_recipe(built, args), header=header).rstrip())
    print()
    title = f"{type(built.optimizer).__name__}: {_groups_count(built)} of example model {args.model!r}"
    console = _console()
    console.print(groups_table(built.groups, title))
    console.print(f"run: {_run_summary(built, args)}. The config is valid.")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """``optiplug convert``: the config as a canonical recipe file, checked to build the same values."""
    from optiplug.tooling.conversion import converted_recipe, recipe_data, recipe_yaml

    recipe = converted_recipe(
        args.config,
        dialect=args.dialect,
        steps_per_epoch=args.steps_per_epoch,
        num_epochs=args.epochs,
        batch_size_per_device=args.batch_size,
        world_size=args.world_size,
    )
    suffix = Path(args.output).suffix.lower() if args.output else ".yaml"
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"cannot write {args.output}: the output must end in .yaml, .yml or .json")
    if suffix == ".json":
        text = json.dumps(recipe_data(recipe), indent=2) + "\n"
    else:
        text = recipe_yaml(recipe, header=f"{PROG} convert: {args.config} as the canonical recipe")
    checked = _check_conversion(args, recipe, _read_back(text, suffix))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(checked, file=sys.stderr)
    return 0


def _read_back(text: str, suffix: str) -> Recipe:
    """The recipe a reader of the written text gets."""
    from optiplug.engine.dialects import to_recipe
    from optiplug.recipe.loaders import load_yaml

    return to_recipe(json.loads(text) if suffix == ".json" else load_yaml(text), dialect=CANONICAL)


def _check_conversion(args: argparse.Namespace, recipe: Recipe, written: Recipe) -> str:
    """Build the original and the written recipe on the example model; a difference is an error."""
    from optiplug.tooling.conversion import differences
    from optiplug.tooling.demo import example_model

    missing = missing_length(recipe, _no_run_options(args)) if _has_schedules(recipe) else []
    if missing:
        return (
            f"not checked: the run's length is unknown; pass {' and '.join(missing)} to write it into run "
            "and check the values"
        )
    original = _build(_recipe(args, args.config), example_model(args.model), args)
    # the converted recipe's warnings are the original's, already shown
    converted = _build(written, example_model(args.model), _no_run_options(args), show_warnings=False)
    found = differences(original, converted)
    if found:
        raise OptiplugError(
            "the converted recipe does not build the same values as the original (please report it): "
            + "; ".join(found)
        )
    updates = "every update" if converted.clock.total_steps is not None else "update 0"
    return (
        f"checked: the same optimizer, {_groups_count(converted)} and values at {updates} as {args.config} "
        f"on example model {args.model!r}"
    )


def _no_run_options(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` without the run figures: the converted recipe must carry them itself."""
    return argparse.Namespace(**(vars(args) | dict.fromkeys(("steps_per_epoch", "epochs", "batch_size", "world_size"))))


def _groups_count(built: Built) -> str:
    count = len(built.groups)
    return f"{count} param group" + ("s" if count != 1 else "")


def cmd_plot(args: argparse.Namespace) -> int:
    """``optiplug plot``: every option's curve per group to a PNG, and the lr to the terminal."""
    from optiplug.tooling.curves import compute_curves
    from optiplug.tooling.demo import example_model
    from optiplug.tooling.plotting import curves_figure, save_png, terminal_summary

    model = example_model(args.model)
    recipe = _recipe(args, args.config)
    require_length(recipe, args)
    built = _build(recipe, model, args)
    curves = compute_curves(built)
    title = (
        f"{Path(args.config).name}: {type(built.optimizer).__name__}, {_groups_count(built)} "
        f"({args.model})\n{_run_summary(built, args)}"
    )
    figure = curves_figure(curves, built.groups, title=title, log_lr=args.log)
    output = save_png(figure, args.output or f"{Path(args.config).stem}-curves.png")
    console = _console()
    width = max(20, min(72, console.width - 16))
    for line in terminal_summary(curves, built.groups, width=width):
        print(line)
    print(f"wrote {output}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``optiplug run``: the demo training run with a progress bar, then the curves and the loss as a PNG."""
    from optiplug.tooling.curves import compute_curves
    from optiplug.tooling.demo import SyntheticTask, example_model, micro_batches_per_epoch
    from optiplug.tooling.plotting import curves_figure, save_png
    from optiplug.tooling.recipes import recipe_path

    config = args.config or recipe_path()
    recipe = _recipe(args, config)
    run = recipe.run
    args.steps_per_epoch = (
        args.steps_per_epoch or run.steps_per_epoch or (None if run.total_steps else DEMO_STEPS_PER_EPOCH)
    )
    args.epochs = args.epochs or run.num_epochs or (None if run.total_steps else DEMO_EPOCHS)
    args.batch_size = args.batch_size or run.batch_size_per_device or DEMO_BATCH
    model = example_model(DEMO_MODEL)
    built = _build(recipe, model, args)
    task = SyntheticTask.make(micro_batches_per_epoch(built) * args.batch_size)
    result = _train_with_progress(built, model, task, args.batch_size)
    curves = compute_curves(built)
    title = f"optiplug run: {Path(config).name} on synthetic data ({DEMO_MODEL})\n{_run_summary(built, args)}"
    figure = curves_figure(curves, built.groups, title=title, log_lr=args.log, losses=result.losses)
    output = save_png(figure, Path(args.output) / "optiplug-run.png")
    print(
        f"final loss {result.final_loss:.4f} on the whole synthetic set (accuracy {result.accuracy:.1%}); "
        f"first update {result.losses[0]:.4f}, last update {result.losses[-1]:.4f}"
    )
    print(f"wrote {output}")
    return 0


def _train_with_progress(built: Built, model: Any, task: Any, batch_size: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from optiplug.tooling.curves import run_updates
    from optiplug.tooling.demo import train

    columns = (
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.4g}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_console()) as progress:
        bar = progress.add_task("train", total=run_updates(built.clock), loss=float("nan"), lr=0.0)

        def advance(_update: int, loss: float) -> None:
            progress.update(bar, advance=1, loss=loss, lr=float(built.optimizer.param_groups[0]["lr"]))

        with _reported_warnings():
            return train(built, model, task, batch_size, advance)


def cmd_schema(args: argparse.Namespace) -> int:
    """``optiplug schema``: the recipe's JSON Schema, to stdout or a file."""
    from optiplug.plugin_system.host import get_registry
    from optiplug.tooling.schema import recipe_schema

    text = json.dumps(recipe_schema(get_registry()), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0
