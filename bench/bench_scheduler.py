"""``OptiplugScheduler.step()`` against ``torch.optim.lr_scheduler.CosineAnnealingLR.step()``.

Run: ``python bench/bench_scheduler.py``. Both drive a cosine lr over the same optimizer
(ResNet-50's four groups: no decay on norms and biases, 10x lr on the head) for a run of
1,000,000 updates. optiplug evaluates the schedule 2,048 updates at a time, vectorized,
and a step reads one float per scheduled group option; torch computes its recursive
formula for every group at every step. The timing includes optiplug's block refills.

A second figure checks that a step costs the same late in the run as early (O(1) per
step: the value of update k is read from its block, never computed from update k-1),
with bench_plot's recipe: warmup + cosine composites for lr and momentum and a cosine
weight decay, 12 scheduled group options.

optiplug's scheduler moves only after an optimizer step (so that steps GradScaler
skips do not count); the benchmark steps no optimizer, so it turns that check off.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch.optim.lr_scheduler import CosineAnnealingLR

import optiplug

try:
    from bench._shapes import HEAD_RULES, ResNet50
    from bench._timing import compare, figure, print_row, setup_threads

    from bench import bench_plot
except ImportError:  # run as a script from bench/
    import bench_plot  # type: ignore[no-redef]
    from _shapes import HEAD_RULES, ResNet50  # type: ignore[no-redef]
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]

STEPS_PER_EPOCH, EPOCHS = 1000, 1000
RECIPE = {
    "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": HEAD_RULES,
    "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
}


ROUNDS, STEPS = 31, 10_000
LATE = 600_000
"""Where the late scheduler starts: it stays inside the 1,000,000-update run while measured."""


def scheduler(recipe: dict[str, Any], start: int = 0) -> optiplug.OptiplugScheduler:
    """A built scheduler at update ``start`` that steps without optimizer steps."""
    built = optiplug.build(recipe, ResNet50(meta=True, head="head"), STEPS_PER_EPOCH, EPOCHS)
    built.scheduler.skip_unstepped = False
    built.scheduler.set_step(start)
    return built.scheduler


def run() -> list[dict[str, Any]]:
    """Measure both figures; one row each (see ``_timing.figure``)."""
    setup_threads()
    ours = scheduler(RECIPE)
    theirs = CosineAnnealingLR(ours.optimizer, T_max=STEPS_PER_EPOCH * EPOCHS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "lr_scheduler.step() before optimizer.step()"
        measured = compare(ours.step, theirs.step, rounds=ROUNDS, steps=STEPS)
    groups = len(ours.optimizer.param_groups)
    rows = [figure(f"scheduler.step() vs CosineAnnealingLR.step(), {groups} groups", measured, 1.0)]
    late = compare(
        scheduler(bench_plot.RECIPE, LATE).step, scheduler(bench_plot.RECIPE).step, rounds=ROUNDS, steps=STEPS
    )
    rows.append(figure("scheduler.step() from update 600,000 vs from 0 (O(1))", late, 1.2))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
