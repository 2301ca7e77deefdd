"""Three real configs of mmpretrain 1.2.0 and MMDetection 3.3.0, read as files, give MMEngine's values.

The fast sample of test_config_trees.py's sweep (configs/README.md says where each file
comes from): every parameter's lr, momentum / betas and weight decay at every iteration,
optiplug's from the file against MMEngine's from ``Config.fromfile`` of the same file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdet_layer_decay_reference import LearningRateDecayOptimizerConstructor
from test_config_trees import first_difference, mmengine_config

import optiplug

CONFIGS = Path(__file__).parent / "configs"
SAMPLE = {
    "mmpretrain/swin_transformer/swin-tiny_16xb64_in1k.py": "mmengine_paramwise",
    "mmdet/convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py": "mmdet_layer_decay",
    "mmdet/detr/detr_r50_8xb2-150e_coco.py": "mmengine_paramwise",
}


@pytest.fixture(scope="module", autouse=True)
def mmdet_constructor() -> None:
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    OPTIM_WRAPPER_CONSTRUCTORS.register_module(module=LearningRateDecayOptimizerConstructor, force=True)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_a_real_config_gives_mmengines_values_at_every_iteration(name: str) -> None:
    path = CONFIGS / name
    recipe = optiplug.to_recipe(path, steps_per_epoch=2)
    assert [rule.kind for rule in recipe.rules] == [SAMPLE[name]]
    reference = mmengine_config(path)
    assert first_difference(path, reference, epoch_length=2) is None


def test_the_comparison_sees_a_difference() -> None:
    """The sweep's check fails where MMEngine's run differs: a milestone moved by one epoch."""
    path = CONFIGS / "mmdet/detr/detr_r50_8xb2-150e_coco.py"
    reference = mmengine_config(path)
    scheduler = reference["param_scheduler"][0]
    assert scheduler["type"] == "MultiStepLR"
    scheduler["milestones"] = [m + 1 for m in scheduler["milestones"]]
    difference = first_difference(path, reference, epoch_length=1)
    assert difference is not None and "iteration 100, " in difference and ", lr: MMEngine " in difference
