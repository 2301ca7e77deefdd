"""LARC (built through optiplug) against torch SGD foreach and against an apex-style per-tensor loop.

Run: ``python bench/bench_larc.py``. Figures (time ratios, lower is better):

* LARC + SGD vs SGD foreach alone, 500 tensors x 1024 elements (launch-bound, GPU-like);
* LARC vs the same LARC rules written as apex does, one tensor at a time;
* LARC + SGD vs SGD foreach on ResNet-50's parameter shapes (25.6M elements, bandwidth-bound);
* LARC around fused SGD vs fused SGD alone, on both shapes (goal 1.6: fused SGD's memory
  traffic plus one more read of each param and grad for the norms is about 1.4x).

LARC runs in scale mode with trust_coefficient 1 so that gradients keep their size
from step to step (a smaller coefficient shrinks them towards denormals; the work done
is the same for any value).
"""

from __future__ import annotations

from typing import Any

import torch

import optiplug

try:
    from bench._shapes import resnet50_shapes
    from bench._timing import compare, figure, print_row, setup_threads
except ImportError:  # run as a script from bench/
    from _shapes import resnet50_shapes  # type: ignore[no-redef]
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]

SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
LARC = {"name": "larc", "trust_coefficient": 1.0, "clip": False}


def named_params(shapes: list[tuple[int, ...]]) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters with gradients, named so that no rule sees them as norms or biases."""
    torch.manual_seed(0)
    params = []
    for i, shape in enumerate(shapes):
        p = torch.nn.Parameter(torch.randn(shape))
        p.grad = torch.randn(shape)
        params.append((f"p{i}", p))
    return params


def clone(params: list[tuple[str, torch.nn.Parameter]]) -> list[tuple[str, torch.nn.Parameter]]:
    """Copies of the parameters and of their gradients (deepcopy leaves ``.grad`` behind)."""
    copies = []
    for name, p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        copies.append((name, q))
    return copies


def larc_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    recipe = {"optimizer": {"name": "SGD", "foreach": True, **SGD}, "wrappers": [LARC]}
    return optiplug.build(recipe, params).optimizer


def sgd_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for _, p in params], foreach=True, **SGD)


def fused_sgd(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    """torch's fused SGD (one kernel per tensor that reads each array once): what a user picks for speed."""
    return torch.optim.SGD([p for _, p in params], fused=True, **SGD)


def larc_fused_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    """LARC (built through optiplug) around fused SGD."""
    recipe = {"optimizer": {"name": "SGD", "fused": True, **SGD}, "wrappers": [LARC]}
    return optiplug.build(recipe, params).optimizer


FUSED_TARGET = 1.6
"""Goal against fused SGD: its traffic plus one more read of each param and grad for the norms (~1.4x)."""


class ApexStyleLarc:
    """apex's LARC.step written out: a Python loop over tensors, two norms and a branch each."""

    def __init__(self, optimizer: torch.optim.Optimizer, trust_coefficient: float, eps: float = 1e-8) -> None:
        self.optimizer, self.trust, self.eps = optimizer, trust_coefficient, eps

    @torch.no_grad()
    def step(self) -> None:
        decays = []
        for group in self.optimizer.param_groups:
            weight_decay = group.get("weight_decay", 0)
            decays.append(weight_decay)
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm, grad_norm = torch.norm(p), torch.norm(p.grad)
                if param_norm != 0 and grad_norm != 0:
                    rate = self.trust * param_norm / (grad_norm + param_norm * weight_decay + self.eps)
                    p.grad.add_(p, alpha=weight_decay).mul_(rate)
        self.optimizer.step()
        for group, weight_decay in zip(self.optimizer.param_groups, decays, strict=True):
            group["weight_decay"] = weight_decay


def run() -> list[dict[str, Any]]:
    """Measure every figure; returns one row per figure (see ``_timing.figure``)."""
    setup_threads()
    rows = []
    small = named_params([(1024,)] * 500)
    ours = larc_optimizer(clone(small))
    rows.append(
        figure("LARC+SGD vs SGD foreach, 500 x 1024", compare(ours.step, sgd_optimizer(clone(small)).step), 1.3)
    )
    apex = ApexStyleLarc(sgd_optimizer(clone(small)), LARC["trust_coefficient"])
    rows.append(figure("LARC+SGD vs apex-style per-tensor LARC+SGD, 500 x 1024", compare(ours.step, apex.step), 0.35))
    big = named_params(resnet50_shapes())
    measured = compare(larc_optimizer(clone(big)).step, sgd_optimizer(clone(big)).step, rounds=11, steps=2)
    rows.append(figure("LARC+SGD vs SGD foreach, ResNet-50 shapes", measured, 1.2))
    for label, params, sizes in (("500 x 1024", small, {}), ("ResNet-50 shapes", big, {"rounds": 11, "steps": 2})):
        measured = compare(larc_fused_optimizer(clone(params)).step, fused_sgd(clone(params)).step, **sizes)
        rows.append(figure(f"LARC+SGD fused vs SGD fused, {label}", measured, FUSED_TARGET))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
