"""Every training config of an installed OpenMMLab 1.x-generation config tree, built as its users have it (slow).

The trees are found as in tests/core/config/test_installed_trees.py: an installed package's
``.mim/configs`` or the folders in ``OPTIPLUG_OPENMMLAB_CONFIGS`` (e.g. unpacked wheels of
``pip download --no-deps mmselfsup==0.11.0 mmsegmentation==0.30.0 mmcls==0.25.0``). Each
config is built on a model whose backbone has the shapes the layer-decay constructors read.
Refusals by the .py reader are counted apart; every refusal by the dialect must be one of
the classes docs/migrating/mmcv.md defends.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import warnings
from pathlib import Path

import pytest
from torch import nn

import optiplug
from optiplug import ConfigError

PACKAGES = ("mmselfsup", "mmcls", "mmseg", "mmdet")
DEFENDED = {
    "unknown optimizer": "an optimizer the framework registers itself and optiplug does not ship: import it first",
    "unknown policy": "an lr policy a framework registers itself (YOLOX and CosineAnnealingCooldown are read)",
    "IterBasedRunner takes max_iters, not 'ipu": "IPU runners",
    "sets optimizer=dict(type=...), and this file": "a .py file without optimizer (kNN / feature extraction)",
}


def trees() -> list[Path]:
    found = [Path(p) for p in os.environ.get("OPTIPLUG_OPENMMLAB_CONFIGS", "").split(os.pathsep) if p]
    found = [p / ".mim" / "configs" if (p / ".mim" / "configs").is_dir() else p for p in found]
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin and (Path(spec.origin).parent / ".mim" / "configs").is_dir():
            found.append(Path(spec.origin).parent / ".mim" / "configs")
    return [p for p in found if p.is_dir()]


def model() -> nn.Module:
    """A detector-like model: a backbone MMSegmentation reads as ConvNeXt, with ViT's layers and Swin's depths."""
    backbone = type("ConvNeXtSwinViT", (nn.Module,), {})()
    backbone.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    backbone.depths = (1, 1)
    backbone.norm = nn.LayerNorm(2)
    root = nn.Module()
    root.backbone = backbone
    root.head = nn.Linear(2, 2)
    return root


def reader_refusal(message: str, path: Path) -> bool:
    return ", line " in message or "config file not found" in message or message.startswith(str(path))


@pytest.mark.slow
@pytest.mark.parametrize("tree", trees() or [None], ids=lambda t: t.parent.parent.name if t else "none")
def test_every_training_config_builds_or_is_refused_for_a_defended_reason(tree):
    if tree is None:
        pytest.skip("no OpenMMLab package with .mim/configs installed, and OPTIPLUG_OPENMMLAB_CONFIGS unset")
    counts: collections.Counter[str] = collections.Counter()
    undefended: list[str] = []
    for path in sorted(tree.rglob("*.py")):
        if "_base_" in path.parts:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                optiplug.build(path, model(), steps_per_epoch=10)
                counts["read"] += 1
            except ConfigError as exc:
                message = str(exc)
                if reader_refusal(message, path) and "sets optimizer=dict" not in message:
                    counts["refused by the reader"] += 1
                    continue
                reason = next((k for k in DEFENDED if k in message), None)
                counts[f"refused: {reason}"] += 1
                if reason is None:
                    undefended.append(f"{path.relative_to(tree)}: {message[:200]}")
    print(f"{tree}: {dict(counts)}")
    assert counts["read"] > 0
    assert not undefended, "\n".join(undefended)
