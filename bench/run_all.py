"""Every benchmark, then a summary table: ``python bench/run_all.py [name ...]`` (``tox -e bench``).

Each script under bench/ has ``run() -> list[dict]`` (one row per figure, see
``_timing.figure``). Names select scripts (``adamw``, ``bench_adamw``); by default all
run. The summary is a markdown table (figure, measured, target, met); the exit status
is 1 if a target is not met.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import format_value, print_row

SCRIPTS = (
    "bench_larc",
    "bench_lars",
    "bench_groups",
    "bench_adamw",
    "bench_scheduler",
    "bench_plot",
    "bench_build",
    "bench_import",
    "bench_compile",
)


def selected(names: list[str]) -> list[str]:
    """The scripts named on the command line (all when none), in the standard order."""
    wanted = {name if name.startswith("bench_") else f"bench_{name}" for name in names}
    unknown = wanted - set(SCRIPTS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(SCRIPTS)}")
    return [script for script in SCRIPTS if not wanted or script in wanted]


def measured(row: dict[str, Any]) -> str:
    """The median, with min-max for ratios and times."""
    unit = row.get("unit", "ratio")
    value = format_value(row["median"], unit)
    if row["min"] == row["max"]:
        return value
    return f"{value} ({format_value(row['min'], unit)}-{format_value(row['max'], unit)})"


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table of every figure."""
    lines = ["| figure | measured: median (min-max) | target | met |", "|---|---|---|---|"]
    for row in rows:
        unit = row.get("unit", "ratio")
        target = f"<= {row['target']:g}" if unit == "ratio" else f"<= {format_value(row['target'], unit)}"
        lines.append(f"| {row['name']} | {measured(row)} | {target} | {'yes' if row['met'] else '**no**'} |")
    return lines


def main(argv: list[str]) -> int:
    """Run the selected benchmarks; print each figure, then the table."""
    rows: list[dict[str, Any]] = []
    for script in selected(argv):
        start = time.perf_counter()
        print(f"## {script}", flush=True)
        for row in importlib.import_module(script).run():
            print_row(row)
            rows.append(row)
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    print()
    print("\n".join(summary(rows)))
    missed = [row["name"] for row in rows if not row["met"]]
    if missed:
        print(f"\n{len(missed)} target(s) not met: {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
