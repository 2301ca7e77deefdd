"""Config trees shaped as OpenMMLab's (tests/core/config/configs/), read as their users have them.

Each file uses constructs the real trees use: a ``_base_`` dataset file with ``if not
prefetch: train_pipeline.extend(...)``, ``{{_base_.model.backbone}}``, ``sum(...)``,
``[1.0] * 80``, comprehensions, subscript assignment, ``copy.deepcopy``, f-strings, and
MMEngine's pure-Python style (``with read_base(): from .._base_.x import *``, classes
imported from mmengine and torch, ``.update()``, attribute assignment). The reference is
MMEngine's own ``Config.fromfile``, which executes the files (optiplug never does).
"""

from __future__ import annotations

import re
import textwrap
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch

import optiplug
from optiplug import ConfigError
from optiplug.recipe.pyfile import load_pyfile
from optiplug.recipe.pyvalues import ConfigDict, Unknown

CONFIGS = Path(__file__).parent / "configs"
ALL = sorted(CONFIGS.rglob("*.py"))
SIMCLR = CONFIGS / "mmselfsup/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
FASTER_RCNN = CONFIGS / "mmdet/faster_rcnn/faster_rcnn_r50_fpn_lsj_100e.py"
RETINANET = CONFIGS / "mmengine/retinanet/retinanet_r50_fpn_2x_coco.py"


def as_optiplug_writes_it(value: Any) -> Any:
    """MMEngine's ``to_dict()`` names an imported class ``torch.optim.SGD``; optiplug names it ``SGD``."""
    if isinstance(value, dict):
        return {k: as_optiplug_writes_it(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(as_optiplug_writes_it(v) for v in value)
    if isinstance(value, str) and re.fullmatch(r"(mmengine|torch)(\.\w+)+", value):
        return value.rsplit(".", 1)[1]
    return value


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_every_file_reads_as_mmengine_executes_it(path):
    config = pytest.importorskip("mmengine.config", reason="MMEngine (the test extra 'mmengine') is the reference")
    lazy = "read_base" in path.read_text() or path.parts[-4:-2] == ("mmengine", "_base_")
    reference = config.Config.fromfile(str(path), lazy_import=None if lazy else False).to_dict()
    assert load_pyfile(path) == as_optiplug_writes_it(reference)


def test_the_seed_simclr_config_as_mmselfsup_writes_it():
    data = load_pyfile(SIMCLR)
    assert data["optimizer"]["lr"] == 0.3
    assert data["data"]["train"]["pipelines"][0][-2:] == [
        {"type": "ToTensor"},
        {"type": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    ]
    assert data["lr_config"]["warmup_by_epoch"] is True
    assert data["runner"] == {"type": "EpochBasedRunner", "max_epochs": 200}


def test_substitutions_sums_and_comprehensions():
    data = load_pyfile(CONFIGS / "mmselfsup/benchmarks/linear_eval.py")
    assert data["model"]["backbone"]["depth"] == 50  # {{_base_.model.backbone}}
    assert data["data"]["samples_per_gpu"] == 256  # sum([64, 64, 128])
    assert data["frozen"] == ["layer1", "layer2", "layer3"]
    assert [p["type"] for p in data["train_pipeline"]] == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ToTensor",
        "Normalize",
    ]
    assert data["optimizer"] == {"type": "SGD", "lr": 30.0, "momentum": 0.9, "weight_decay": 0.0}
    faster = load_pyfile(FASTER_RCNN)
    assert faster["model"]["roi_head"]["bbox_head"]["loss_cls"]["class_weight"] == [1.0] * 80 + [0.1]
    assert faster["optimizer"]["lr"] == 0.08 and faster["runner"]["max_epochs"] == 100
    assert faster["work_dir"] == "./work_dirs/faster_rcnn_80c_1024"


def test_the_pure_python_style_names_imported_classes():
    data = load_pyfile(RETINANET)
    assert data["optim_wrapper"] == {
        "type": "OptimWrapper",
        "optimizer": {"type": "AdamW", "lr": 0.0001, "weight_decay": 0.05},
        "clip_grad": {"max_norm": 35, "norm_type": 2},
    }
    assert [s["type"] for s in data["param_scheduler"]] == ["LinearLR", "MultiStepLR"]
    assert data["param_scheduler"][1]["gamma"] == 0.2 and data["train_cfg"]["max_epochs"] == 24
    assert data["auto_scale_lr"] == {"enable": True, "base_batch_size": 16}
    assert not {"LinearLR", "AdamW", "read_base"} & set(data)  # imported names are not config keys


def test_mmengine_files_change_their_bases_through_base_before_the_merge():
    data = load_pyfile(CONFIGS / "mmdet3/ssd/ssd300_coco.py")
    assert data["param_scheduler"][1] == {
        "type": "MultiStepLR",
        "begin": 0,
        "end": 120,
        "by_epoch": True,
        "milestones": [90, 108],
        "gamma": 0.1,
    }
    assert data["optim_wrapper"]["optimizer"]["lr"] == pytest.approx(0.03)
    assert "auto_scale_lr" not in data  # del _base_.auto_scale_lr


def model() -> torch.nn.Module:
    layers = {"conv1": torch.nn.Conv2d(3, 4, 3), "bn1": torch.nn.BatchNorm2d(4), "fc": torch.nn.Linear(4, 2)}
    return torch.nn.Sequential(OrderedDict(layers))


def lrs(built: optiplug.Built, steps: int) -> list[list[float]]:
    values = []
    for _ in range(steps):
        values.append([g["lr"] for g in built.optimizer.param_groups])
        built.optimizer.step()
        built.scheduler.step()
    return values


@pytest.mark.parametrize("path", [SIMCLR, FASTER_RCNN], ids=["simclr", "faster_rcnn"])
def test_build_from_the_file_equals_build_from_what_mmengine_executes(path):
    config = pytest.importorskip("mmengine.config", reason="MMEngine (the test extra 'mmengine') is the reference")
    reference = config.Config.fromfile(str(path), lazy_import=False).to_dict()
    keys = ("optimizer", "optimizer_config", "lr_config", "runner")
    from_dict = optiplug.build({k: reference[k] for k in keys if k in reference}, model(), steps_per_epoch=3)
    from_file = optiplug.build(path, model(), steps_per_epoch=3)
    assert type(from_file.optimizer) is type(from_dict.optimizer)
    assert lrs(from_file, 40) == lrs(from_dict, 40)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_what_optiplug_never_reads_may_be_anything(tmp_path):
    """A model built by an imported function, a pipeline with calls: the optimizer builds all the same."""
    write(
        tmp_path,
        "_base_/models/vit.py",
        """
        from mmcls.models import build_backbone
        import numpy as np
        model = dict(backbone=build_backbone(dict(type='ViT')), head=dict(num_classes=np.int64(1000)))
        """,
    )
    path = write(
        tmp_path,
        "c.py",
        """
        _base_ = './_base_/models/vit.py'
        from mmcls.datasets.pipelines import RandAugment
        policies = RandAugment.default_policies()
        train_pipeline = [dict(type='RandAugment', policies=policies)]
        data = dict(samples_per_gpu=64, train=dict(pipeline=train_pipeline))
        optimizer = dict(type='AdamW', lr=5e-4 * data['samples_per_gpu'] * 8 / 512, weight_decay=0.05)
        lr_config = dict(policy='CosineAnnealing', min_lr=1e-5, by_epoch=False)
        runner = dict(type='IterBasedRunner', max_iters=100)
        """,
    )
    built = optiplug.build(path, model())
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    data = load_pyfile(path)
    assert isinstance(data, ConfigDict) and sorted(data.unknown_keys()) == ["policies"]
    assert isinstance(dict.__getitem__(data["model"], "backbone"), Unknown)


def names_the_construct(error: ConfigError, path: Path, line: int, construct: str) -> None:
    """The message names the file, the line and the construct, as the Unknown's own error or its repr."""
    message = str(error)
    assert "not evaluated" in message
    assert f"{path}, line {line}: " in message and construct in message


def test_a_top_level_unknown_key_is_refused_when_read(tmp_path):
    path = write(
        tmp_path,
        "c.py",
        """
        from mmcv.runner import get_dist_info
        optimizer = dict(type='SGD', lr=0.1, momentum=0.9)
        lr_config = dict(policy='Step', step=[30], by_epoch=False) if get_dist_info()[1] > 1 else None
        runner = dict(type='IterBasedRunner', max_iters=100)
        """,
    )
    with pytest.raises(ConfigError) as caught:
        optiplug.build(path, model())
    assert str(caught.value).startswith(f"lr_config: {path}, line 4: not evaluated: a call to get_dist_info()")
    assert caught.value.path == "lr_config"


def test_an_unknown_read_key_names_the_key_the_file_the_line_and_the_construct(tmp_path):
    path = write(
        tmp_path,
        "c.py",
        """
        from mmcv.runner import get_dist_info
        optimizer = dict(type='SGD', lr=0.1, momentum=0.9)
        world_size = get_dist_info()[1]
        lr_config = dict(policy='Step', step=[30 * world_size], by_epoch=False)
        runner = dict(type='IterBasedRunner', max_iters=100)
        """,
    )
    with pytest.raises(ConfigError) as caught:
        optiplug.build(path, model())
    names_the_construct(caught.value, path, 4, "a call to get_dist_info()")
    assert caught.value.path == "lr_config.step"


def test_an_unknown_nested_value_is_named_by_its_full_key(tmp_path):
    path = write(
        tmp_path,
        "c.py",
        """
        from some.project import head_lr_mult
        optimizer = dict(type='SGD', lr=0.1, paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=head_lr_mult())}))
        runner = dict(type='IterBasedRunner', max_iters=100)
        """,
    )
    with pytest.raises(ConfigError) as caught:
        optiplug.build(path, model())
    names_the_construct(caught.value, path, 3, "a call to head_lr_mult()")
    assert caught.value.path == "optimizer.paramwise_cfg.custom_keys.head.lr_mult"


def test_an_unknown_if_makes_what_it_assigns_unknown_only(tmp_path):
    path = write(
        tmp_path,
        "c.py",
        """
        import os
        optimizer = dict(type='SGD', lr=0.1)
        if os.environ.get('FAST'):
            lr_config = dict(policy='Fixed')
            data = dict(samples_per_gpu=8)
        runner = dict(type='IterBasedRunner', max_iters=10)
        """,
    )
    data = load_pyfile(path)
    assert data["optimizer"] == {"type": "SGD", "lr": 0.1}
    with pytest.raises(ConfigError, match=r"c.py, line 4: not evaluated: an if on os.environ.get\('FAST'\)"):
        optiplug.build(path, model())


def test_a_dict_merged_into_an_unknown_base_value_stays_unknown(tmp_path):
    write(tmp_path, "base.py", "from x import schedule\nlr_config = schedule()\noptimizer = dict(type='SGD', lr=0.1)\n")
    path = write(tmp_path, "c.py", "_base_ = 'base.py'\nlr_config = dict(warmup_iters=5)\n")
    with pytest.raises(ConfigError, match=r"base.py, line 2: not evaluated: a call to schedule\(\)"):
        load_pyfile(path)["lr_config"]
    replaced = write(tmp_path, "d.py", "_base_ = 'base.py'\nlr_config = dict(_delete_=True, policy='Fixed')\n")
    assert load_pyfile(replaced)["lr_config"] == {"policy": "Fixed"}
