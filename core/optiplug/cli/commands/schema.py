"""``optiplug schema``: the JSON Schema of the canonical recipe, with every installed plugin's names."""

from __future__ import annotations

import argparse
import json

from optiplug.cli.command import Command


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``--output``."""
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    """Write the schema to ``--output`` or stdout."""
    from optiplug.cli.rendering import write_output
    from optiplug.plugin_system.host import get_registry
    from optiplug.tooling.schema import recipe_schema

    write_output(json.dumps(recipe_schema(get_registry()), indent=2) + "\n", args.output)
    return 0


COMMAND = Command(
    "schema",
    "Print the JSON Schema of the canonical recipe, with every installed plugin's schedules, rules, "
    "wrappers and optimizers.",
    "  optiplug schema -o optiplug-recipe.schema.json\n"
    '  # then in VS Code settings: "yaml.schemas": {"optiplug-recipe.schema.json": "recipes/*.yaml"}',
    configure_parser,
    run,
)
