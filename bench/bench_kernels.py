"""Which kernel each torch optimizer should use on CPU: foreach and fused against torch's default loop.

Run: ``python bench/bench_kernels.py [small|resnet50]`` (a few minutes; not part of
run_all). For every ``torch.optim`` optimizer with a ``foreach`` argument, a step over
two param groups (weights with decay, 1-D tensors without, as optiplug merges them)
with ``foreach=True`` and, where torch has one, ``fused=True``, each as a ratio to the
same optimizer with torch's CPU default (the per-tensor loop). Shapes: 300 small
tensors (launch-bound) and ResNet-50's 161 tensors (bandwidth-bound). These figures
chose optiplug_torch's CPU default (docs/plugins/torch.md).
"""

from __future__ import annotations

import inspect
import sys
import warnings
from typing import Any

import torch

try:
    from bench._shapes import resnet50_shapes
    from bench._timing import compare, setup_threads
except ImportError:  # run as a script from bench/
    from _shapes import resnet50_shapes  # type: ignore[no-redef]
    from _timing import compare, setup_threads  # type: ignore[no-redef]

SHAPES = {
    "small": ([(48, 48), (48,), (48,), (48,)] * 75, {"rounds": 9, "steps": 3}),
    "resnet50": (resnet50_shapes(), {"rounds": 5, "steps": 1}),
}
OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "NAdam", "RAdam", "Adamax", "ASGD", "Adadelta", "Rprop")


def grouped(name: str, shapes: list[tuple[int, ...]], **kernel: Any) -> torch.optim.Optimizer:
    """``name`` over two groups of seeded parameters with gradients."""
    generator = torch.Generator().manual_seed(0)
    params = []
    for shape in shapes:
        p = torch.nn.Parameter(torch.randn(shape, generator=generator))
        p.grad = torch.randn(shape, generator=generator) * 1e-2
        params.append(p)
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": 1e-4},
        {"params": [p for p in params if p.ndim == 1], "weight_decay": 0.0},
    ]
    return getattr(torch.optim, name)(groups, lr=1e-3, **kernel)


def table(which: list[str]) -> None:
    """Print one line per optimizer and shape set."""
    setup_threads()
    warnings.simplefilter("ignore")
    for label in which:
        shapes, timing = SHAPES[label]
        for name in OPTIMIZERS:
            default = grouped(name, shapes)
            kernels = [{"foreach": True}]
            if "fused" in inspect.signature(getattr(torch.optim, name)).parameters:
                kernels.append({"fused": True})
            cells = []
            for kernel in kernels:
                r = compare(grouped(name, shapes, **kernel).step, default.step, warmup=1, **timing)
                cells.append(f"{next(iter(kernel))} {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})")
            print(f"{label:<9} {name:<9} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    table(sys.argv[1:] or list(SHAPES))
