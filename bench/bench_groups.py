"""How many param groups ResNet-50 needs for "no decay on norms and biases, 10x lr on the head".

Run: ``python bench/bench_groups.py``. The same intent is written in each dialect
optiplug reads (canonical rules, VISSL's ``OPTIMIZER`` block, MMCV's ``paramwise_cfg``,
MMSelfSup's ``paramwise_options``); each build must give every parameter the intended
lr and weight decay, in at most 4 groups. MMCV's and MMEngine's constructors make one
group per parameter (161 for ResNet-50), which defeats torch's multi-tensor and fused
kernels; bench_adamw.py measures what that costs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

import optiplug

try:
    from bench._shapes import HEAD_RULES, ResNet50
    from bench._timing import count, figure, print_row
except ImportError:  # run as a script from bench/
    from _shapes import HEAD_RULES, ResNet50  # type: ignore[no-redef]
    from _timing import count, figure, print_row  # type: ignore[no-redef]

LR, WEIGHT_DECAY, HEAD_LR_MULT = 0.1, 1e-4, 10
RUN = {"steps_per_epoch": 100, "num_epochs": 10}

CANONICAL = {
    "optimizer": {"name": "SGD", "lr": LR, "momentum": 0.9, "weight_decay": WEIGHT_DECAY},
    "rules": HEAD_RULES,
}
VISSL = {
    "OPTIMIZER": {
        "name": "sgd",
        "momentum": 0.9,
        "weight_decay": WEIGHT_DECAY,
        "regularize_bn": False,
        "regularize_bias": False,
        "num_epochs": RUN["num_epochs"],
        "head_optimizer_params": {"use_different_lr": True},
        "param_schedulers": {
            "lr": {"name": "constant", "value": LR},
            "lr_head": {"name": "constant", "value": LR * HEAD_LR_MULT},
        },
    }
}
MMCV_PARAMWISE_CFG = {
    "optimizer": {
        "type": "SGD",
        "lr": LR,
        "momentum": 0.9,
        "weight_decay": WEIGHT_DECAY,
        "paramwise_cfg": {
            "norm_decay_mult": 0.0,
            "bias_decay_mult": 0.0,
            # A custom key decides alone (no norm/bias rule after it), so the head's bias needs its own.
            "custom_keys": {
                "head.weight": {"lr_mult": HEAD_LR_MULT},
                "head.bias": {"lr_mult": HEAD_LR_MULT, "decay_mult": 0.0},
            },
        },
    },
    "runner": {"type": "EpochBasedRunner", "max_epochs": RUN["num_epochs"]},
}
MMSELFSUP_PARAMWISE_OPTIONS = {
    "optimizer": {
        "type": "SGD",
        "lr": LR,
        "momentum": 0.9,
        "weight_decay": WEIGHT_DECAY,
        "paramwise_options": {
            r"(bn|gn)(\d+)?.(weight|bias)": {"weight_decay": 0.0},
            r"downsample.1": {"weight_decay": 0.0},
            r"bias": {"weight_decay": 0.0},
            r"\Ahead.": {"lr_mult": HEAD_LR_MULT},
        },
    },
    "runner": {"type": "EpochBasedRunner", "max_epochs": RUN["num_epochs"]},
}
DIALECTS = {
    "canonical rules": CANONICAL,
    "VISSL OPTIMIZER block": VISSL,
    "MMCV paramwise_cfg": MMCV_PARAMWISE_CFG,
    "MMSelfSup paramwise_options": MMSELFSUP_PARAMWISE_OPTIONS,
}


def intended(model: nn.Module) -> dict[str, tuple[float, float]]:
    """Each parameter's intended (lr, weight decay)."""
    out = {}
    for module_name, module in model.named_modules():
        for leaf, _param in module.named_parameters(recurse=False):
            lr = LR * HEAD_LR_MULT if module_name == "head" else LR
            no_decay = isinstance(module, nn.BatchNorm2d) or leaf == "bias"
            out[f"{module_name}.{leaf}"] = (lr, 0.0 if no_decay else WEIGHT_DECAY)
    return out


def options(built: optiplug.Built, model: nn.Module) -> dict[str, tuple[float, float]]:
    """Each parameter's (lr, weight decay) before the first update."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in built.optimizer.param_groups for p in g["params"]}


def run() -> list[dict[str, Any]]:
    """One row per dialect: the number of groups (each build checked against the intent)."""
    model = ResNet50(meta=True, head="head")
    want = intended(model)
    per_tensor = len(list(model.parameters()))
    rows = []
    for dialect, config in DIALECTS.items():
        built = optiplug.build(config, model, **RUN)
        got = options(built, model)
        wrong = sorted(n for n in want if abs(got[n][0] - want[n][0]) > 1e-12 or got[n][1] != want[n][1])
        if wrong:
            raise RuntimeError(f"{dialect}: wrong lr or weight decay for {wrong[:5]} ({len(wrong)} parameters)")
        name = f"param groups, ResNet-50, {dialect} (MMCV/MMEngine: {per_tensor})"
        rows.append(figure(name, count(len(built.optimizer.param_groups)), 4, unit="groups"))
    return rows


if __name__ == "__main__":
    for row in run():
        print_row(row)
