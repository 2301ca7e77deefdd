"""``python -m optiplug_wsd cooldown CONFIG --at K -o BRANCH.yaml``: write the recipe of a cooldown branch.

The command form of :func:`optiplug_wsd.cooldown_recipe`: the branch of ``CONFIG``'s run
at update ``K`` as a canonical YAML recipe (to stdout without ``-o``). Exit status 0 on
success, 2 for a problem with the config or the flags, named in the command's terms.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

import optiplug
from optiplug.plugin import unstructure_config

PROG = "python -m optiplug_wsd"
FLAGS = {
    "cooldown_recipe(at=...)": "--at",
    "cooldown_recipe(length=...)": "--length",
    "build(steps_per_epoch=...)": "--steps-per-epoch",
    "build(num_epochs=...)": "--num-epochs",
}


def parser() -> argparse.ArgumentParser:
    """The command's parser."""
    main = argparse.ArgumentParser(prog=PROG, description="Cooldowns of wsd runs (Hägele et al., 2024).")
    commands = main.add_subparsers(dest="command", required=True)
    cooldown = commands.add_parser("cooldown", help="write the recipe of a cooldown branched at update --at")
    cooldown.add_argument("config", help="the run's config (any format optiplug.build reads)")
    cooldown.add_argument("--at", type=int, required=True, help="the update the branch starts cooling down at")
    cooldown.add_argument("--length", type=int, default=None, help="the cooldown's updates (default: its decay)")
    cooldown.add_argument("--option", default="lr", help="the scheduled option whose wsd is branched (default lr)")
    cooldown.add_argument("--steps-per-epoch", type=int, default=None, help="the run's updates per epoch")
    cooldown.add_argument("--num-epochs", type=int, default=None, help="the run's epochs")
    cooldown.add_argument("-o", "--output", default=None, help="write the recipe here (default: stdout)")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status."""
    from optiplug_wsd import cooldown_recipe

    args = parser().parse_args(argv)
    try:
        recipe = cooldown_recipe(
            args.config,
            args.at,
            length=args.length,
            option=args.option,
            steps_per_epoch=args.steps_per_epoch,
            num_epochs=args.num_epochs,
        )
    except optiplug.ConfigError as exc:
        message = str(exc)
        for term, flag in FLAGS.items():
            message = message.replace(term, flag)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    text = yaml.safe_dump(unstructure_config(recipe, optiplug.get_registry()), sort_keys=False)
    if args.output is None:
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
