"""``optiplug find-lr``: the LR range test (Smith 2017) on the demo task or on your model and data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optiplug.cli.command import Command
from optiplug.cli.parser import add_run_options, positive_int

DEMO_MODEL = "mlp"
DEMO_SAMPLES, DEMO_BATCH = 2048, 64
LOSSES = ("cross_entropy", "mse")


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``CONFIG``, the model and data, the sweep, the outputs and the run options."""
    from optiplug.tooling.find_lr import RECIPES

    sub.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or MMCV-style .py config")
    sub.add_argument(
        "--model",
        default=DEMO_MODEL,
        metavar="MODEL",
        help=f"the demo's {DEMO_MODEL} (default, on its synthetic task) or package.module:factory (needs --data)",
    )
    sub.add_argument(
        "--data",
        metavar="FACTORY",
        help="package.module:factory returning an iterable of (inputs, targets) batches",
    )
    sub.add_argument(
        "--loss", default="cross_entropy", metavar="LOSS", help=f"{', '.join(LOSSES)} or package.module:function"
    )
    sweep = sub.add_argument_group("the sweep")
    sweep.add_argument("--start-lr", type=positive_float, default=1e-6, metavar="LR", help="first lr (default 1e-6)")
    sweep.add_argument("--end-lr", type=positive_float, default=10.0, metavar="LR", help="last lr (default 10)")
    sweep.add_argument("--num-steps", type=positive_int, default=100, metavar="N", help="updates (default 100)")
    sweep.add_argument("--mode", choices=("exp", "linear"), default="exp", help="how the lr grows (default exp)")
    sub.add_argument("-o", "--output", metavar="PNG", help="the loss-vs-lr PNG (default: CONFIG-find-lr.png)")
    sub.add_argument("--recipe", choices=RECIPES, action="append", help="print only this snippet (repeatable)")
    add_run_options(sub)


def _loss_fn(spec: str) -> Any:
    from torch import nn

    from optiplug.tooling.factories import imported

    if spec == "cross_entropy":
        return nn.CrossEntropyLoss()
    if spec == "mse":
        return nn.MSELoss()
    if ":" not in spec:
        from optiplug.errors import ConfigError, did_you_mean

        raise ConfigError(f"--loss: unknown loss {spec!r}{did_you_mean(spec, LOSSES)}; known: {', '.join(LOSSES)}")
    return imported(spec, "--loss")


def model_and_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model and the batches: the demo's, or the factories ``--model`` / ``--data`` name."""
    from optiplug.errors import ConfigError
    from optiplug.tooling.demo import SyntheticTask
    from optiplug.tooling.factories import imported, model_from

    model = model_from(args.model)
    if args.data is not None:
        return model, imported(args.data, "--data")()
    if args.model != DEMO_MODEL:
        raise ConfigError(f"--model {args.model}: the synthetic task fits only {DEMO_MODEL!r}; give --data too")
    task = SyntheticTask.make(DEMO_SAMPLES)
    batches = [
        (task.inputs[i : i + DEMO_BATCH], task.targets[i : i + DEMO_BATCH]) for i in range(0, len(task), DEMO_BATCH)
    ]
    return model, batches


def run(args: argparse.Namespace) -> int:
    """Build the config for the model, run the range test, draw it and print the bounds and recipe snippets."""
    from optiplug.cli.arguments import build_with, recipe_from, run_figures
    from optiplug.errors import ConfigError
    from optiplug.tooling.demo import single_thread
    from optiplug.tooling.find_lr import RECIPES, find_lr, save_figure

    if args.start_lr >= args.end_lr:
        raise ConfigError(f"--start-lr {args.start_lr:g} must be below --end-lr {args.end_lr:g}")
    model, batches = model_and_data(args)
    figures = run_figures(args)
    built = build_with(recipe_from(args.config, figures, args.dialect), model, figures)
    with single_thread():
        result = find_lr(
            built,
            model,
            batches,
            _loss_fn(args.loss),
            start_lr=args.start_lr,
            end_lr=args.end_lr,
            num_steps=args.num_steps,
            mode=args.mode,
        )
    print(result.summary())
    title = f"LR range test: {Path(args.config).name} ({type(built.optimizer).__name__}, {args.model})"
    output = save_figure(result, args.output or f"{Path(args.config).stem}-find-lr.png", title)
    for kind in args.recipe or RECIPES:
        print(f"\n# {kind}\n{result.recipe(kind).rstrip()}")
    print(f"\nwrote {output}")
    return 0


COMMAND = Command(
    "find-lr",
    "The LR range test (Smith 2017): train briefly while the lr grows, plot the loss against the lr with the "
    "suggested min and max, and print triangular, one-cycle and warmup+cosine snippets with those bounds; "
    "param groups keep their lr ratios; the model is restored after.",
    "  optiplug find-lr recipe.yaml -o find-lr.png\n"
    "  optiplug find-lr recipe.yaml --model mypkg.models:make_model --data mypkg.data:train_batches",
    configure_parser,
    run,
)
