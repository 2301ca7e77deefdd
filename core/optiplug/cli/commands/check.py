"""``optiplug check``: validate a config, print the resolved recipe as YAML and the groups of an example model."""

from __future__ import annotations

import argparse

from optiplug.cli.command import Command
from optiplug.cli.parser import add_config_and_model, add_run_options


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``CONFIG``, ``--model`` and the run options."""
    add_config_and_model(sub)
    add_run_options(sub)


def run(args: argparse.Namespace) -> int:
    """Build the config on the example model; print the resolved recipe, the groups and the run."""
    from optiplug.cli.arguments import planned_build
    from optiplug.cli.rendering import console, groups_count, groups_table, print_table, run_summary
    from optiplug.tooling.conversion import recipe_yaml
    from optiplug.tooling.demo import example_model

    model = example_model(args.model)
    planned = planned_build(args, model, need_length=False)
    built, figures = planned.built, planned.figures
    resolved = planned.resolved_recipe()
    header = f"{args.config}: the resolved canonical recipe (after dialect translation and lr scaling)"
    if resolved is None:
        print(
            f"# {args.config}: the resolved recipe depends on the updates per epoch: pass --steps-per-epoch to see it"
        )
    else:
        print(recipe_yaml(resolved, header=header).rstrip())
    print()
    title = f"{type(built.optimizer).__name__}: {groups_count(built)} of example model {args.model!r}"
    out = console()
    print_table(out, groups_table(built.groups, title))
    out.print(f"run: {run_summary(built, figures, per_epoch=planned.per_epoch)}. The config is valid.")
    return 0


COMMAND = Command(
    "check",
    "Validate a config; print the resolved canonical recipe and the param groups of an example model.",
    "  optiplug check recipe.yaml --model vit_like\n"
    "  optiplug check vissl_config.yaml --epochs 100 --steps-per-epoch 5000 --batch-size 32 --world-size 64",
    configure_parser,
    run,
)
