"""``optiplug.build`` against MMSelfSup's per-parameter constructor, 10,000 tensors and 20 regex rules.

Run: ``python bench/bench_build.py``. Both sides match the same 20 patterns against every
parameter name with ``re.search`` semantics (every matching pattern applies, in order,
later ones win per key, ``*_mult`` multiplies the optimizer's value) and end with a
torch optimizer. MMSelfSup 0.x's ``DefaultOptimizerConstructor`` (spec mmcv.md 2.1) is
written out below: one param group per parameter. optiplug compiles the rules once,
matches each parameter once and merges parameters with equal options into one group.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

import optiplug

try:
    from bench._timing import compare, figure, print_row, setup_threads
except ImportError:  # run as a script from bench/
    from _timing import compare, figure, print_row, setup_threads  # type: ignore[no-redef]

STAGES, BLOCKS = 20, 125
"""20 stages of 125 blocks (the last 124), each a Linear and a LayerNorm, plus 4 tensors: 10,000 tensors."""

OPTIMIZER = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}

PATTERNS: dict[str, dict[str, Any]] = {
    r"(bn|gn|ln|norm)(\d+)?.(weight|bias)": {"weight_decay": 0.0},
    r"bias": {"weight_decay": 0.0},
    r"\Ahead.": {"lr_mult": 10.0},
    r"pos_embed|cls_token": {"weight_decay": 0.0},
    **{rf"\Abackbone\.stages\.{i}\.": {"lr_mult": round(0.9 ** (STAGES - i), 6)} for i in range(16)},
}
"""20 patterns: MMSelfSup's usual no-decay and head patterns, and layer-wise lr decay over 16 stages."""


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)


class Stage(nn.Module):
    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(Block() for _ in range(blocks)))


class Model(nn.Module):
    """``pos_embed``, ``cls_token``, ``backbone.stages.<s>.blocks.<b>.{fc,norm}.{weight,bias}``, ``head``."""

    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 8))
        self.cls_token = nn.Parameter(torch.zeros(1, 8))
        self.backbone = nn.Module()
        self.backbone.stages = nn.ModuleList(Stage(BLOCKS - (s == STAGES - 1)) for s in range(STAGES))
        self.head = nn.Linear(8, 10)


def mmselfsup_constructor(model: nn.Module, optimizer_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """MMSelfSup 0.x ``DefaultOptimizerConstructor.__call__`` (spec mmcv.md 2.1): one group per parameter."""
    optimizer_cfg = dict(optimizer_cfg)
    paramwise_options = optimizer_cfg.pop("paramwise_options", None) or {}
    optimizer_type = optimizer_cfg.pop("type")
    params = []
    for name, param in model.named_parameters():
        group: dict[str, Any] = {"params": [param]}
        if not param.requires_grad:
            params.append(group)
            continue
        for regexp, options in paramwise_options.items():
            if re.search(regexp, name):
                for key, value in options.items():
                    if key.endswith("_mult"):
                        base = key[: -len("_mult")]
                        if base not in optimizer_cfg:
                            raise ValueError(f"{base} not in optimizer_cfg")
                        group[base] = optimizer_cfg[base] * value
                    else:
                        group[key] = value
        params.append(group)
    return getattr(torch.optim, optimizer_type)(params, **optimizer_cfg)


def recipe() -> dict[str, Any]:
    """The same patterns as optiplug rules."""
    rules = [{"kind": "regex", "pattern": pattern, "set": options} for pattern, options in PATTERNS.items()]
    return {"optimizer": {"name": "SGD", **OPTIMIZER}, "rules": rules}


def run() -> list[dict[str, Any]]:
    """Measure the figure; one row (see ``_timing.figure``)."""
    setup_threads()
    model = Model()
    tensors = len(list(model.parameters()))
    if tensors != 10_000:
        raise RuntimeError(f"the model has {tensors} tensors, not 10,000")
    config = recipe()
    mmcv_config = {"type": "SGD", **OPTIMIZER, "paramwise_options": PATTERNS}
    ours = optiplug.build(config, model)
    theirs = mmselfsup_constructor(model, mmcv_config)
    _check_same_options(ours.optimizer, theirs)
    # torch checks each new group against all earlier ones: 10,000 groups take seconds, so few rounds
    # (the calls above were the warm-up).
    measured = compare(
        lambda: optiplug.build(config, model),
        lambda: mmselfsup_constructor(model, mmcv_config),
        rounds=3,
        steps=1,
        warmup=0,
    )
    name = f"build, 10,000 tensors x 20 regex rules ({len(ours.optimizer.param_groups)} groups) vs MMSelfSup's"
    return [figure(name, measured, 0.5)]


def _check_same_options(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer) -> None:
    """Both optimizers give every parameter the same lr and weight decay (else the timing means nothing)."""

    def options(optimizer: torch.optim.Optimizer) -> dict[int, tuple[float, float]]:
        return {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}

    if options(ours) != options(theirs):
        raise RuntimeError("optiplug and the MMSelfSup constructor disagree on the options")


if __name__ == "__main__":
    for row in run():
        print_row(row)
