"""MMEngine config files read as they are: ``_base_``, ``{{_base_.x}}``, ``_delete_``, the pure-Python style.

The files are read by optiplug's .py reader (nothing is imported or executed); the values
built from them are compared with MMEngine's own ``Config.fromfile`` of the same files.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from test_values import L, Net, assert_same_traces

import optiplug

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SCHEDULE = """
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=8),
    dict(type='MultiStepLR', by_epoch=True, milestones=[2, 4], gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=1)
val_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def mmengine_config(path: Path) -> dict[str, Any]:
    from mmengine.config import Config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Config.fromfile(str(path)).to_dict()


def test_base_files_base_variables_and_delete(tmp_path: Path) -> None:
    write(tmp_path, "_base_/schedules/sgd.py", SCHEDULE)
    write(tmp_path, "_base_/default_runtime.py", "default_scope = 'mmpretrain'\nmax_epochs = 5\n")
    config = write(
        tmp_path,
        "configs/resnet_cosine.py",
        """
        _base_ = ['../_base_/schedules/sgd.py', '../_base_/default_runtime.py']
        optim_wrapper = dict(optimizer=dict(lr=0.2), paramwise_cfg=dict(_delete_=True, flat_decay_mult=0.5))
        param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1),
        ]
        train_cfg = dict(max_epochs={{_base_.max_epochs}})
        """,
    )
    reference = mmengine_config(config)
    assert reference["optim_wrapper"]["paramwise_cfg"] == {"flat_decay_mult": 0.5}
    assert reference["train_cfg"]["max_epochs"] == 5
    for option in ("lr", "weight_decay"):
        assert_same_traces(reference, option)
    # optiplug reads the file itself and gives the same values as from MMEngine's merged dict
    from_file = optiplug.build(config, Net(), steps_per_epoch=L)
    from_dict = optiplug.build(reference, Net(), steps_per_epoch=L)
    for step in range(30):
        a = [g["lr"] for g in from_file.optimizer.param_groups]
        b = [g["lr"] for g in from_dict.optimizer.param_groups]
        assert a == b, step
        from_file.scheduler.set_step(step + 1)
        from_dict.scheduler.set_step(step + 1)


def test_pure_python_style_with_imported_classes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_base_/schedule.py",
        """
        from mmengine.optim import LinearLR, MultiStepLR, OptimWrapper
        from torch.optim import SGD

        optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=SGD, lr=0.1, momentum=0.9, weight_decay=1e-4))
        param_scheduler = [
            dict(type=LinearLR, start_factor=0.01, by_epoch=False, end=8),
            dict(type=MultiStepLR, by_epoch=True, milestones=[2, 4], gamma=0.1),
        ]
        train_cfg = dict(by_epoch=True, max_epochs=6)
        """,
    )
    config = write(
        tmp_path,
        "config.py",
        """
        from mmengine.config import read_base

        with read_base():
            from ._base_.schedule import *

        from mmengine.optim import CosineAnnealingLR

        optim_wrapper.update(paramwise_cfg=dict(norm_decay_mult=0.0))
        param_scheduler[1] = dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=1)
        """,
    )
    recipe = optiplug.to_recipe(config, steps_per_epoch=L)
    chain = recipe.schedules["lr"].params.schedulers
    assert [s["kind"] for s in chain] == ["Linear", "CosineAnnealing"]
    reference = {
        "optim_wrapper": {
            "type": "OptimWrapper",
            "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
            "paramwise_cfg": {"norm_decay_mult": 0.0},
        },
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.01, "by_epoch": False, "end": 8},
            {"type": "CosineAnnealingLR", "eta_min": 0.0, "by_epoch": True, "begin": 1},
        ],
        "train_cfg": {"by_epoch": True, "max_epochs": 6},
    }
    built = optiplug.build(config, Net(), steps_per_epoch=L)
    expected = optiplug.build(reference, Net(), steps_per_epoch=L)
    assert [g["lr"] for g in built.optimizer.param_groups] == [g["lr"] for g in expected.optimizer.param_groups]
    assert_same_traces(reference, "lr")
