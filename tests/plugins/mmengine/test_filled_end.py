"""A scheduler without ``end`` begins where MMEngine's runner ends it: MMEngine raises, so does optiplug.

Found by the config-tree sweep (test_config_trees.py): mmpretrain 1.2.0's
``_base_/schedules/imagenet_bs1024_linearlr_bn_nowd.py`` (ShuffleNet v1 and v2) starts its
PolyLR at iteration 5000 and leaves its end to the loop's 300 epochs, which at 16 iterations
per epoch or fewer is at or before 5000.
"""

from __future__ import annotations

import pytest
from reference import run_mmengine
from torch import nn

import optiplug
from optiplug import ConfigError


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("steps_per_epoch", "refused"), [(10, True), (20, False)])
def test_a_scheduler_beginning_at_the_filled_end_is_refused_as_mmengine_refuses_it(
    steps_per_epoch: int, refused: bool
) -> None:
    """mmpretrain's imagenet_bs1024_linearlr_bn_nowd.py: PolyLR begins at iteration 5000 with the loop's end."""
    cfg = {
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.5, "momentum": 0.9, "weight_decay": 4e-5}},
        "param_scheduler": [
            {"type": "ConstantLR", "factor": 0.1, "by_epoch": False, "begin": 0, "end": 5000},
            {"type": "PolyLR", "eta_min": 0, "by_epoch": False, "begin": 5000},
        ],
        "train_cfg": {"by_epoch": True, "max_epochs": 300},
    }
    model = nn.Linear(2, 2)
    if refused:
        with pytest.raises(ValueError, match="end should be larger than begin"):
            run_mmengine(cfg, model, steps_per_epoch)
        with pytest.raises(ConfigError, match=r"begins at 5000.*3000 iterations \(300 epochs") as info:
            optiplug.build(cfg, model, steps_per_epoch=steps_per_epoch)
        assert info.value.path == "param_scheduler[1].begin"
    else:
        built = optiplug.build(cfg, model, steps_per_epoch=steps_per_epoch)
        ours = []
        for step in range(300 * steps_per_epoch):
            ours.append(built.optimizer.param_groups[0]["lr"])
            built.scheduler.set_step(step + 1)
        assert ours == pytest.approx([row[0] for row in run_mmengine(cfg, model, steps_per_epoch)], rel=1e-12)
