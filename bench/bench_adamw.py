"""torch's AdamW over optiplug's merged groups against MMCV's one group per tensor.

Run: ``python bench/bench_adamw.py``. Both give norms and biases no weight decay
(optiplug: two rules, two groups; MMCV 1.x ``paramwise_cfg=dict(norm_decay_mult=0,
bias_decay_mult=0)``: one group per parameter, built here by hand as MMCV's
``DefaultOptimizerConstructor`` does, spec mmcv.md 2.3). The reference keeps torch's
defaults; optiplug's torch plugin picks the fused CPU kernel for the merged groups.

Figures: 300 small tensors (launch-bound, where per-group overhead shows) and
ResNet-50's 161 tensors (25.6M elements, bandwidth-bound).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import optiplug

try:
    from bench._shapes import ResNet50, with_grads
    from bench._timing import compare, figure, print_row, setup_threads
except ImportError:  # run as a script from bench/
    from _shapes import ResNet50, with_grads  # type: ignore[no-redef]
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]

LR, WEIGHT_DECAY = 1e-3, 0.05
RECIPE = {
    "optimizer": {"name": "AdamW", "lr": LR, "weight_decay": WEIGHT_DECAY},
    "rules": [{"kind": "norm", "set": {"weight_decay": 0}}, {"kind": "bias", "set": {"weight_decay": 0}}],
}
NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


class SmallNet(nn.Module):
    """75 blocks of Linear(48, 48) + LayerNorm(48): 300 tensors of 2,304 or 48 elements."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Linear(48, 48), nn.LayerNorm(48)) for _ in range(75)))


def mmcv_groups(model: nn.Module) -> list[dict[str, Any]]:
    """MMCV 1.x ``add_params`` with norm_decay_mult=0 and bias_decay_mult=0: one group per parameter."""
    groups = []
    for _prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            group: dict[str, Any] = {"params": [param]}
            if isinstance(module, NORMS):
                group["weight_decay"] = WEIGHT_DECAY * 0.0
            elif name == "bias":
                group["weight_decay"] = WEIGHT_DECAY * 0.0
            groups.append(group)
    return groups


def pair(make: Callable[[], nn.Module]) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """optiplug's AdamW and MMCV's, on two equal copies of the model, checked to take the same step."""
    model, copy = with_grads(make(), scale=1e-2), with_grads(make(), scale=1e-2)
    ours = optiplug.build(RECIPE, model).optimizer
    theirs = torch.optim.AdamW(mmcv_groups(copy), lr=LR, weight_decay=WEIGHT_DECAY)
    ours.step()
    theirs.step()
    for p, q in zip(model.parameters(), copy.parameters(), strict=True):
        if not torch.allclose(p, q, rtol=1e-5, atol=1e-7):
            raise RuntimeError("optiplug's AdamW and the reference disagree after one step")
    return ours, theirs


def run() -> list[dict[str, Any]]:
    """Measure both figures; one row each (see ``_timing.figure``)."""
    setup_threads()
    ours, theirs = pair(SmallNet)
    rows = [figure("AdamW step, 300 small tensors: 2 groups vs MMCV's 300", compare(ours.step, theirs.step), 0.7)]
    ours, theirs = pair(ResNet50)
    measured = compare(ours.step, theirs.step, rounds=9, steps=2)
    rows.append(figure("AdamW step, ResNet-50: 2 groups vs MMCV's 161", measured, 1.1))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
