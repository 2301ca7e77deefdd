"""A whole process that imports optiplug and builds, against one that imports torch and makes an SGD.

Run: ``python bench/bench_import.py``. Each side is a fresh ``python -c`` process; the
figure is the ratio of their CPU times (user + system, from ``wait4``), interleaved over
rounds. torch's import dominates both; the difference is optiplug's import, plugin
discovery (entry points, the registry) and the build. A build imports only what it
uses: no matplotlib, rich, yaml or numpy, and plugins' modules only when their hooks
are asked for what a build needs.

Two figures: optiplug as installed from a wheel (its modules compiled to bytecode, as
torch's are), and optiplug from its source tree without bytecode (an editable install
with ``PYTHONDONTWRITEBYTECODE``, so every module is compiled at every start).
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from bench._timing import figure, interleaved, print_row
except ImportError:  # run as a script from bench/
    from _timing import figure, interleaved, print_row  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
OPTIPLUG = "import optiplug, torch; optiplug.build({'optimizer': {'name': 'SGD', 'lr': 0.1}}, torch.nn.Linear(4, 4))"
TORCH = "import torch; torch.optim.SGD(torch.nn.Linear(4, 4).parameters(), lr=0.1)"
HEAVY = ("matplotlib", "rich", "yaml", "numpy", "jsonschema", "fvcore")
"""Modules a build must not import (torch itself imports numpy)."""


def cpu_seconds(code: str, env: Mapping[str, str]) -> float:
    """User + system CPU seconds of a fresh ``python -c code`` (threads included)."""
    process = subprocess.Popen([sys.executable, "-c", code], env=dict(env))
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed with exit code {process.returncode}")
    return usage.ru_utime + usage.ru_stime


def compare_processes(env: Mapping[str, str], rounds: int) -> dict[str, float]:
    """CPU-time ratios optiplug / torch over ``rounds`` (order alternating; the probes warmed the file cache)."""
    return interleaved(lambda: cpu_seconds(OPTIPLUG, env), lambda: cpu_seconds(TORCH, env), rounds)


def compiled_copy(target: Path) -> Path:
    """optiplug's packages copied under ``target`` and compiled to bytecode (what a wheel install gives)."""
    for source in [ROOT / "core" / "optiplug", *sorted((ROOT / "plugins").glob("optiplug_*"))]:
        shutil.copytree(source, target / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    if not compileall.compile_dir(target, quiet=1):
        raise RuntimeError(f"could not compile the copy in {target}")
    return target


def heavy_imports(env: Mapping[str, str]) -> list[str]:
    """Heavy modules the optiplug process imports and the torch process does not (there should be none)."""

    def loaded(code: str) -> set[str]:
        probe = f"{code}; import sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", probe], env=dict(env), capture_output=True, text=True, check=True)
        return set(filter(None, out.stdout.strip().split(",")))

    return sorted(loaded(OPTIPLUG) - loaded(TORCH))


def run(rounds: int = 4) -> list[dict[str, Any]]:
    """Both figures (see the module docstring)."""
    rows = []
    source_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    heavy = heavy_imports(source_env)
    if heavy:
        raise RuntimeError(f"a build imports {', '.join(heavy)}")
    with tempfile.TemporaryDirectory(prefix="optiplug-bench-") as tmp:
        site = compiled_copy(Path(tmp))
        env = dict(source_env, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        where = subprocess.run(
            [sys.executable, "-c", "import optiplug; print(optiplug.__file__)"], env=env, capture_output=True, text=True
        )
        if not where.stdout.startswith(str(site)):
            raise RuntimeError(f"the compiled copy was not imported: {where.stdout or where.stderr}")
        measured = compare_processes(env, rounds)
        rows.append(figure("python -c 'import optiplug; build' vs 'import torch; SGD'", measured, 1.2))
    measured = compare_processes(source_env, rounds - 1)
    rows.append(figure("the same, optiplug from source without bytecode", measured, 1.2))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
