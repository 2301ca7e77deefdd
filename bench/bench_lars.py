"""The LARS optimizers against torch SGD (foreach and fused) and against timm's foreach ``Lars``.

Run: ``python bench/bench_lars.py`` (``--threads 2``: only the rows against fused SGD and
timm, with 2 threads, wall clock of the fastest rounds; by default they run with 1 and with 2 threads). Against
fused SGD and timm, LARS runs with ``fused: true`` (its CPU path through torch's fused
SGD kernel).
Both LARS take their trust ratios from two norms per tensor, yet a step should cost about
what one SGD step does: they stack small tensors and use multi-tensor kernels (on the
CPU in float32, torch's fused SGD kernel), with no host sync on a GPU. Against fused SGD the goal is
1.6 (fused SGD's traffic plus one more read of each param and grad for the norms), on
500 tensors x 1024 and on ResNet-50's shapes, and ahead of timm's ``Lars`` (foreach).

timm is loaded from its file ``timm/optim/lars.py`` alone (``import timm`` needs
torchvision, which would pull another torch); its rows are left out, with a note,
when timm is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import torch

import optiplug

try:
    from bench._timing import compare, figure, setup_threads
    from bench.bench_larc import (
        FUSED_TARGET,
        clone,
        compare_at,
        fused_rows,
        fused_sgd,
        main,
        sgd_optimizer,
        shapes,
    )
except ImportError:  # run as a script from bench/
    from _timing import compare, figure, setup_threads  # type: ignore[no-redef]
    from bench_larc import (  # type: ignore[no-redef]
        FUSED_TARGET,
        clone,
        compare_at,
        fused_rows,
        fused_sgd,
        main,
        sgd_optimizer,
        shapes,
    )

OPTIONS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}


def built(name: str, params: list[tuple[str, torch.nn.Parameter]], **extra: Any) -> torch.optim.Optimizer:
    return optiplug.build({"optimizer": {"name": name, **OPTIONS, **extra}}, params).optimizer


def timm_lars() -> type[torch.optim.Optimizer] | None:
    """timm's ``Lars`` class, read from its own files (None when timm is not installed).

    ``timm/optim/lars.py`` and its ``_helpers.py`` import only torch; they are loaded as a
    package of their own so that ``timm/__init__`` (models, torchvision) never runs.
    """
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "optim"
    package = types.ModuleType("_timm_optim")
    package.__path__ = [str(folder)]
    sys.modules.setdefault("_timm_optim", package)
    return importlib.import_module("_timm_optim.lars").Lars  # type: ignore[no-any-return]


def run(threads: tuple[int, ...] = (1, 2), fused_only: bool = False) -> list[dict[str, Any]]:
    """Measure every figure; returns one row per figure (see ``_timing.figure``).

    The rows against fused SGD and timm run at each of ``threads``; the others on one thread.
    """
    setup_threads()
    both = shapes()
    small = both["500 x 1024"]
    rows = []
    if not fused_only:
        for name, label in (("LARS", "MMSelfSup LARS"), ("vissl_lars", "VISSL lars")):
            ours = built(name, clone(small))
            measured = compare(ours.step, sgd_optimizer(clone(small)).step)
            rows.append(figure(f"{label} vs SGD foreach, 500 x 1024", measured, 1.3))
    timm = timm_lars()
    if timm is None:
        print("timm is not installed: the rows against timm's Lars are left out")

    def against_fused(
        threads: int, name: str, params: list[tuple[str, torch.nn.Parameter]], sizes: dict[str, int]
    ) -> list[dict[str, Any]]:
        ours = built("LARS", clone(params), fused=True)
        measured = compare_at(threads, ours.step, fused_sgd(clone(params)).step, **sizes)
        rows = [figure(f"MMSelfSup LARS fused vs SGD fused, {name}", measured, FUSED_TARGET)]
        if timm is not None:
            theirs = timm([p for _, p in clone(params)], foreach=True, **OPTIONS)
            measured = compare_at(threads, theirs.step, fused_sgd(clone(params)).step, **sizes)
            rows.append(figure(f"timm Lars (foreach) vs SGD fused, {name}", measured, float("inf")))
            measured = compare_at(threads, ours.step, theirs.step, **sizes)
            rows.append(figure(f"MMSelfSup LARS fused vs timm Lars (foreach), {name}", measured, 1.0))
        return rows

    for count in threads:
        rows.extend(fused_rows(count, both, against_fused, floor=False))
    torch.set_num_threads(1)
    return rows


if __name__ == "__main__":
    main(run)
