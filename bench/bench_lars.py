"""The LARS optimizers against torch SGD foreach on 500 small tensors (launch-bound, GPU-like).

Run: ``python bench/bench_lars.py``. Both LARS take their trust ratios from two norms
per tensor, yet a step should cost about what one SGD step does: they stack small
tensors and use multi-tensor kernels, with no host sync.
"""

from __future__ import annotations

from typing import Any

import torch

import optiplug

try:
    from bench._timing import compare, figure, print_row, setup_threads
    from bench.bench_larc import clone, named_params, sgd_optimizer
except ImportError:  # run as a script from bench/
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]
    from bench_larc import clone, named_params, sgd_optimizer  # type: ignore[no-redef]

OPTIONS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}


def built(name: str, params: list[tuple[str, torch.nn.Parameter]], **extra: Any) -> torch.optim.Optimizer:
    return optiplug.build({"optimizer": {"name": name, **OPTIONS, **extra}}, params).optimizer


def run() -> list[dict[str, Any]]:
    """Measure every figure; returns one row per figure (see ``_timing.figure``)."""
    setup_threads()
    small = named_params([(1024,)] * 500)
    rows = []
    for name, label in (("LARS", "MMSelfSup LARS"), ("vissl_lars", "VISSL lars")):
        ours = built(name, clone(small))
        measured = compare(ours.step, sgd_optimizer(clone(small)).step)
        rows.append(figure(f"{label} vs SGD foreach, 500 x 1024", measured, 1.3))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
