"""Side-by-side timing: A and B interleaved over rounds, the ratio A/B per round.

Each round times ``steps`` calls of A and ``steps`` calls of B back to back (the order
alternates from round to round), so both see the same machine load; the figure is the
median of the per-round ratios, with their min and max. Times are the CPU time of the
calling thread (torch runs on one intra-op thread here), so other processes sharing
the machine slow neither side down.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def setup_threads() -> None:
    """One intra-op thread (the machine is shared) and no denormal slow paths."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _time(fn: Callable[[], Any], steps: int) -> float:
    start = time.thread_time()
    for _ in range(steps):
        fn()
    return (time.thread_time() - start) / steps


def compare(
    a: Callable[[], Any], b: Callable[[], Any], *, rounds: int = 31, steps: int = 5, warmup: int = 3
) -> dict[str, float]:
    """Ratios time(a) / time(b) over ``rounds``: median, min, max, and the median times in ms."""
    for _ in range(warmup):
        a()
        b()
    ratios, times_a, times_b = [], [], []
    for r in range(rounds):
        if r % 2:
            tb, ta = _time(b, steps), _time(a, steps)
        else:
            ta, tb = _time(a, steps), _time(b, steps)
        ratios.append(ta / tb)
        times_a.append(ta)
        times_b.append(tb)
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "a_ms": statistics.median(times_a) * 1e3,
        "b_ms": statistics.median(times_b) * 1e3,
    }


def figure(name: str, measured: dict[str, float], target: float) -> dict[str, Any]:
    """One result row: the ratio figures, the target (an upper bound) and whether it was met."""
    return {"name": name, **measured, "target": target, "met": measured["median"] <= target}


def print_row(row: dict[str, Any]) -> None:
    """One line per figure: name, ratio median (min, max), times, target, met / not met."""
    print(
        f"{row['name']:<58} ratio {row['median']:.3f} (min {row['min']:.3f}, max {row['max']:.3f})"
        f"  [{row['a_ms']:.2f} ms vs {row['b_ms']:.2f} ms]  target <= {row['target']}"
        f"  {'met' if row['met'] else 'NOT MET'}",
        flush=True,
    )
