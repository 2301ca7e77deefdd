"""``optiplug convert``: a config as a canonical recipe file, checked to build the same values."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from optiplug.cli.command import Command
from optiplug.cli.parser import PROG, add_config_and_model, add_run_options
from optiplug.errors import ConfigError, OptiplugError

if TYPE_CHECKING:
    from optiplug.recipe.model import Recipe, RunConfig

CANONICAL = "canonical"
SUFFIXES = (".yaml", ".yml", ".json")


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``CONFIG``, ``--model``, ``--to``, ``--output`` and the run options."""
    add_config_and_model(sub, model_use="the example model the conversion is checked on")
    sub.add_argument(
        "--to",
        type=target,
        default=CANONICAL,
        metavar="FORMAT",
        help="the format to write: canonical (default) or a dialect optiplug writes (mmengine: an MMEngine .py config)",
    )
    sub.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (.yaml, .yml or .json; .py for --to mmengine) instead of stdout",
    )
    add_run_options(sub)


def target(value: str) -> str:
    """``--to``: canonical or a dialect with a writer (else argparse's usage error, exit status 2)."""
    from optiplug.engine.dialects import writable
    from optiplug.plugin_system.host import get_registry

    known = [CANONICAL, *writable(get_registry())]
    if value not in known:
        raise argparse.ArgumentTypeError(f"optiplug writes {', '.join(known)}, not {value!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Write the canonical recipe (to ``--output`` or stdout), then say whether it was checked."""
    from optiplug.cli.arguments import run_figures
    from optiplug.cli.rendering import write_output
    from optiplug.tooling.conversion import converted_recipe

    figures = run_figures(args)
    if args.to != CANONICAL:
        return run_dialect(args, figures)
    recipe = converted_recipe(
        args.config,
        dialect=args.dialect,
        steps_per_epoch=figures.steps_per_epoch,
        num_epochs=figures.num_epochs,
        batch_size_per_device=figures.batch_size_per_device,
        world_size=figures.world_size,
    )
    suffix = output_suffix(args.output)
    text = recipe_text(recipe, suffix, args.config)
    checked = check_conversion(args, figures, recipe, read_back(text, suffix))
    write_output(text, args.output)
    print(checked, file=sys.stderr)
    return 0


def run_dialect(args: argparse.Namespace, figures: RunConfig) -> int:
    """``--to <dialect>``: write the config in that dialect (a ``.py`` file), then say whether it was checked."""
    from optiplug.cli.rendering import write_output
    from optiplug.tooling.conversion import converted_config, python_config

    if args.output and Path(args.output).suffix.lower() != ".py":
        raise ConfigError(f"cannot write {args.output}: an {args.to} config is a .py file")
    config = converted_config(
        args.config,
        to=args.to,
        dialect=args.dialect,
        steps_per_epoch=figures.steps_per_epoch,
        num_epochs=figures.num_epochs,
        batch_size_per_device=figures.batch_size_per_device,
        world_size=figures.world_size,
    )
    header = f"{PROG} convert: {args.config} as an {args.to} config"
    if figures.steps_per_epoch:
        header += (
            f"\nwritten for {figures.steps_per_epoch} iterations per epoch (len(train_dataloader)); "
            f"build it with --steps-per-epoch {figures.steps_per_epoch}"
        )
    text = python_config(config, header)
    checked = check_dialect(args, figures, text)
    write_output(text, args.output)
    print(checked, file=sys.stderr)
    return 0


DIALECT_TOLERANCE = 1e-9
"""A written dialect's schedulers may chain factors where the original computes a closed form."""


def check_dialect(args: argparse.Namespace, figures: RunConfig, text: str) -> str:
    """Build the original and the written config (read back by its dialect) on the example model."""
    import tempfile

    import attrs

    from optiplug.cli.arguments import build_with, has_schedules, missing_length, recipe_from
    from optiplug.cli.rendering import groups_count
    from optiplug.tooling.conversion import differences
    from optiplug.tooling.demo import example_model

    original_recipe = recipe_from(args.config, figures, args.dialect)
    missing = missing_length(original_recipe.recipe, figures) if has_schedules(original_recipe.recipe) else []
    if missing:
        return f"not checked: the run's length is unknown; pass {' and '.join(missing)} to check the values"
    # the written config says its length itself (train_cfg); the loader's length and the batch stay build()'s
    written_figures = attrs.evolve(figures, num_epochs=None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "written.py"
        path.write_text(text, encoding="utf-8")
        written = recipe_from(str(path), written_figures, args.to, show_warnings=False)
        original = build_with(original_recipe, example_model(args.model), figures)
        converted = build_with(written, example_model(args.model), written_figures, show_warnings=False)
    found = differences(original, converted, tolerance=DIALECT_TOLERANCE)
    if found:
        raise OptiplugError(
            f"the written {args.to} config does not build the same values as the original (please report it): "
            + "; ".join(found)
        )
    updates = "every update" if converted.clock.total_steps is not None else "update 0"
    return (
        f"checked: read back as an {args.to} config, the same optimizer, {groups_count(converted)} and values at "
        f"{updates} (to {DIALECT_TOLERANCE:g} of each option's largest value) as {args.config} on example model "
        f"{args.model!r}"
    )


def output_suffix(output: str | None) -> str:
    """The format to write, by the output's suffix (``.yaml`` for stdout); a ConfigError for any other."""
    suffix = Path(output).suffix.lower() if output else ".yaml"
    if suffix not in SUFFIXES:
        raise ConfigError(f"cannot write {output}: the output must end in .yaml, .yml or .json")
    return suffix


def recipe_text(recipe: Recipe, suffix: str, config: str) -> str:
    """The recipe as the text of a ``suffix`` file (YAML with a header naming ``config``, or JSON)."""
    from optiplug.tooling.conversion import recipe_data, recipe_yaml

    if suffix == ".json":
        return json.dumps(recipe_data(recipe), indent=2) + "\n"
    return recipe_yaml(recipe, header=f"{PROG} convert: {config} as the canonical recipe")


def read_back(text: str, suffix: str) -> Recipe:
    """The recipe a reader of the written text gets."""
    from optiplug.engine.dialects import to_recipe
    from optiplug.recipe.loaders import load_yaml

    return to_recipe(json.loads(text) if suffix == ".json" else load_yaml(text), dialect=CANONICAL)


def check_conversion(args: argparse.Namespace, figures: RunConfig, recipe: Recipe, written: Recipe) -> str:
    """Build the original and the written recipe on the example model; a difference is an error.

    The written recipe is built without the run ``figures``: it must carry them itself.
    """
    from optiplug.cli.arguments import build_with, has_schedules, missing_length, no_figures, recipe_from
    from optiplug.cli.rendering import groups_count
    from optiplug.tooling.conversion import differences
    from optiplug.tooling.demo import example_model

    missing = missing_length(recipe, no_figures()) if has_schedules(recipe) else []
    if missing:
        return (
            f"not checked: the run's length is unknown; pass {' and '.join(missing)} to write it into run "
            "and check the values"
        )
    from optiplug.engine.dialects import Translated

    original = build_with(recipe_from(args.config, figures, args.dialect), example_model(args.model), figures)
    # the converted recipe's warnings are the original's, already shown
    converted = build_with(Translated(written), example_model(args.model), no_figures(), show_warnings=False)
    found = differences(original, converted)
    if found:
        raise OptiplugError(
            "the converted recipe does not build the same values as the original (please report it): "
            + "; ".join(found)
        )
    updates = "every update" if converted.clock.total_steps is not None else "update 0"
    return (
        f"checked: the same optimizer, {groups_count(converted)} and values at {updates} as {args.config} "
        f"on example model {args.model!r}"
    )


COMMAND = Command(
    "convert",
    "Write a config (VISSL, MMCV, MMEngine, canonical) as the canonical recipe, with the run figures in its run "
    "section, or as an MMEngine config (--to mmengine); checks that it builds the same values at every update.",
    "  optiplug convert vissl.yaml --to canonical -o recipe.yaml --steps-per-epoch 5000 --batch-size 32 "
    "--world-size 64\n"
    "  optiplug convert configs/simclr.py -o simclr.yaml --steps-per-epoch 1252\n"
    "  optiplug convert mmcls_resnet50.py --to mmengine -o resnet50_mmengine.py --steps-per-epoch 5005",
    configure_parser,
    run,
)
