"""The data of a plot: every scheduled option of every group over a 1,000,000-update run.

Run: ``python bench/bench_plot.py``. The recipe schedules lr (linear warmup over 5% of
the run, then cosine, as a composite), momentum (the mirror composite) and weight decay
(cosine) for ResNet-50's four groups; ``optiplug.tooling.curves.compute_curves`` evaluates
them, vectorized, in the scheduler's own blocks, and ``plotting.envelope`` picks each
distinct curve's points to draw. No drawing: matplotlib is not timed. The figure is
seconds (absolute), target under 1 s.
"""

from __future__ import annotations

from typing import Any

import optiplug
from optiplug.tooling.curves import compute_curves
from optiplug.tooling.plotting import envelope

try:
    from bench._shapes import HEAD_RULES, ResNet50
    from bench._timing import figure, print_row, seconds, setup_threads
except ImportError:  # run as a script from bench/
    from _shapes import HEAD_RULES, ResNet50  # type: ignore[no-redef]
    from _timing import figure, print_row, seconds, setup_threads  # type: ignore[no-redef]

STEPS_PER_EPOCH, EPOCHS = 1000, 1000


def composite(start: float, peak: float, end: float) -> dict[str, Any]:
    """Linear from ``start`` to ``peak`` over 5% of the run, then cosine to ``end``."""
    return {
        "name": "composite",
        "schedulers": [
            {"name": "linear", "start_value": start, "end_value": peak},
            {"name": "cosine", "start_value": peak, "end_value": end},
        ],
        "lengths": [0.05, 0.95],
    }


RECIPE = {
    "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": HEAD_RULES,
    "schedules": {
        "lr": composite(0.001, 0.1, 0.0),
        "momentum": composite(0.95, 0.85, 0.95),
        "weight_decay": {"name": "cosine", "start_value": 1e-4, "end_value": 1e-5},
    },
}


def plot_data(built: optiplug.Built) -> int:
    """The curves and the points to draw of each distinct curve; returns the number of points."""
    curves = compute_curves(built)
    return sum(len(envelope(curve)) for option in curves.scheduled for _, curve in curves.distinct(option))


def run() -> list[dict[str, Any]]:
    """Measure the figure; one row (see ``_timing.figure``)."""
    setup_threads()
    built = optiplug.build(RECIPE, ResNet50(meta=True, head="head"), STEPS_PER_EPOCH, EPOCHS)
    measured = seconds(lambda: plot_data(built), rounds=5)
    return [figure("plot data, 1,000,000 updates, 3 scheduled options x 4 groups", measured, 1.0, unit="s")]


if __name__ == "__main__":
    for row in run():
        print_row(row)
