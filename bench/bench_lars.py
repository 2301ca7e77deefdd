"""The LARS optimizers against torch SGD (foreach and fused) and against timm's foreach ``Lars``.

Run: ``python bench/bench_lars.py``. Both LARS take their trust ratios from two norms
per tensor, yet a step should cost about what one SGD step does: they stack small
tensors and use multi-tensor kernels, with no host sync. Against fused SGD the goal is
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
    from bench._shapes import resnet50_shapes
    from bench._timing import compare, figure, print_row, setup_threads
    from bench.bench_larc import FUSED_TARGET, clone, fused_sgd, named_params, sgd_optimizer
except ImportError:  # run as a script from bench/
    from _shapes import resnet50_shapes  # type: ignore[no-redef]
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]
    from bench_larc import FUSED_TARGET, clone, fused_sgd, named_params, sgd_optimizer  # type: ignore[no-redef]

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


def run() -> list[dict[str, Any]]:
    """Measure every figure; returns one row per figure (see ``_timing.figure``)."""
    setup_threads()
    small = named_params([(1024,)] * 500)
    rows = []
    for name, label in (("LARS", "MMSelfSup LARS"), ("vissl_lars", "VISSL lars")):
        ours = built(name, clone(small))
        measured = compare(ours.step, sgd_optimizer(clone(small)).step)
        rows.append(figure(f"{label} vs SGD foreach, 500 x 1024", measured, 1.3))
    timm = timm_lars()
    if timm is None:
        print("timm is not installed: the rows against timm's Lars are left out")
    big = named_params(resnet50_shapes())
    for label, params, sizes in (("500 x 1024", small, {}), ("ResNet-50 shapes", big, {"rounds": 11, "steps": 2})):
        ours = built("LARS", clone(params))
        measured = compare(ours.step, fused_sgd(clone(params)).step, **sizes)
        rows.append(figure(f"MMSelfSup LARS vs SGD fused, {label}", measured, FUSED_TARGET))
        if timm is not None:
            theirs = timm([p for _, p in clone(params)], foreach=True, **OPTIONS)
            rows.append(
                figure(
                    f"timm Lars (foreach) vs SGD fused, {label}",
                    compare(theirs.step, fused_sgd(clone(params)).step, **sizes),
                    float("inf"),
                )
            )
            rows.append(
                figure(f"MMSelfSup LARS vs timm Lars (foreach), {label}", compare(ours.step, theirs.step, **sizes), 1.0)
            )
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
