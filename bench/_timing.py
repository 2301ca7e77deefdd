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
    return interleaved(lambda: _time(a, steps), lambda: _time(b, steps), rounds)


def interleaved(time_a: Callable[[], float], time_b: Callable[[], float], rounds: int) -> dict[str, float]:
    """Ratios ``time_a() / time_b()`` (each returns seconds), the order alternating from round to round."""
    ratios, times_a, times_b = [], [], []
    for r in range(rounds):
        if r % 2:
            tb, ta = time_b(), time_a()
        else:
            ta, tb = time_a(), time_b()
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


def figure(name: str, measured: dict[str, float], target: float, unit: str = "ratio") -> dict[str, Any]:
    """One result row: the figures, the target (an upper bound) and whether it was met.

    ``unit`` is ``ratio`` (A/B from :func:`compare`), ``s`` (seconds, from :func:`seconds`)
    or a count such as ``groups`` (``median`` = ``min`` = ``max``).
    """
    return {"name": name, **measured, "target": target, "met": measured["median"] <= target, "unit": unit}


def seconds(fn: Callable[[], Any], *, rounds: int = 5, warmup: int = 1) -> dict[str, float]:
    """Seconds (CPU time of the calling thread, as in :func:`compare`) of one call of ``fn``: median, min, max."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def count(value: int) -> dict[str, float]:
    """A figure that is a count (no spread)."""
    return {"median": value, "min": value, "max": value}


def format_value(value: float, unit: str) -> str:
    """``0.412``, ``0.18 s`` or ``4 groups``."""
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "s":
        return f"{value:.3g} s"
    return f"{value:g} {unit}"


def format_ms(ms: float) -> str:
    """``12.34 ms``, or ``4.2 us`` below a millisecond."""
    return f"{ms:.2f} ms" if ms >= 1 else f"{ms * 1e3:.2g} us"


def print_row(row: dict[str, Any]) -> None:
    """One line per figure: name, median (min, max), times, target, met / not met."""
    unit = row.get("unit", "ratio")
    spread = (
        ""
        if row["min"] == row["max"]
        else f" (min {format_value(row['min'], unit)}, max {format_value(row['max'], unit)})"
    )
    times = f"  [{format_ms(row['a_ms'])} vs {format_ms(row['b_ms'])}]" if "a_ms" in row else ""
    print(
        f"{row['name']:<58} {'ratio ' if unit == 'ratio' else ''}{format_value(row['median'], unit)}{spread}{times}"
        f"  target <= {row['target'] if unit == 'ratio' else format_value(row['target'], unit)}"
        f"  {'met' if row['met'] else 'NOT MET'}",
        flush=True,
    )
