"""``optiplug convert`` of an MMEngine config: a canonical recipe giving the same values at every update."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_values import L, Net

import optiplug
from optiplug.tooling.conversion import converted_recipe, differences, recipe_yaml

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CONFIG = {
    "optim_wrapper": {
        "optimizer": {"type": "AdamW", "lr": 1e-3, "weight_decay": 0.05, "betas": (0.9, 0.999)},
        "paramwise_cfg": {"norm_decay_mult": 0.0, "flat_decay_mult": 0.0, "custom_keys": {"head": {"lr_mult": 10.0}}},
        "clip_grad": {"max_norm": 5.0},
        "accumulative_counts": 2,
    },
    "param_scheduler": [
        {"type": "LinearLR", "start_factor": 1e-3, "by_epoch": True, "end": 1, "convert_to_iter_based": True},
        {"type": "CosineAnnealingLR", "eta_min": 1e-5, "by_epoch": True, "begin": 1},
        {"type": "CosineAnnealingMomentum", "eta_min": 0.85, "by_epoch": False},
        {"type": "CosineAnnealingWeightDecay", "eta_min": 0.01, "by_epoch": False},
    ],
    "train_cfg": {"by_epoch": True, "max_epochs": 4},
    "train_dataloader": {"batch_size": 64},
    "auto_scale_lr": {"base_batch_size": 256, "enable": True},
}


def test_converted_recipe_gives_the_same_values_at_every_update(tmp_path: Path) -> None:
    recipe = converted_recipe(CONFIG, steps_per_epoch=L, world_size=2)
    text = recipe_yaml(recipe)
    data = yaml.safe_load(text)
    assert data["schedules"]["lr"]["name"] == "mmengine"
    assert data["optimizer"]["lr"] == pytest.approx(1e-3 * 128 / 256)
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    original = optiplug.build(CONFIG, Net(), steps_per_epoch=L, world_size=2)
    converted = optiplug.build(path, Net())
    assert differences(original, converted) == []
    assert len(original.optimizer.param_groups) > 2


def test_the_convert_command(tmp_path: Path) -> None:
    source = tmp_path / "mmengine_config.py"
    source.write_text(
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=5),\n"
        "                   dict(type='MultiStepLR', milestones=[2, 3], by_epoch=True)]\n"
        "train_cfg = dict(by_epoch=True, max_epochs=4)\n"
    )
    out = tmp_path / "out.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "optiplug", "convert", str(source), "-o", str(out), "--steps-per-epoch", "6"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    original = optiplug.build(source, Net(), steps_per_epoch=6)
    converted = optiplug.build(out, Net())
    assert differences(original, converted) == []
