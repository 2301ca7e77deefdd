"""``use_zero`` in a VISSL config: the ``zero`` wrapper around the optimizer, after LARC.

Training on two processes against unsharded VISSL training is in tests/plugins/zero
(scenario ``vissl``); here, what the translation makes and its errors, in one process.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug

COSINE = {"name": "cosine", "start_value": 0.1, "end_value": 0.0, "update_interval": "step"}


def translate(optimizer: dict, **root):
    block = {"num_epochs": 2, "param_schedulers": {"lr": COSINE}, **optimizer}
    return optiplug.to_recipe({"OPTIMIZER": block, **root}, steps_per_epoch=2)


def test_use_zero_shards_after_larc():
    recipe = translate({"use_zero": True, "use_larc": True})
    assert [w.name for w in recipe.wrappers] == ["larc", "zero"]
    assert recipe.wrappers[1].params.parameters_as_bucket_view is False


def test_sharded_ddp_setup_turns_use_zero_on():
    """VISSL: MODEL.SHARDED_DDP_SETUP.USE_SDP sets OPTIMIZER.use_zero."""
    recipe = translate({}, MODEL={"SHARDED_DDP_SETUP": {"USE_SDP": True}})
    assert [w.name for w in recipe.wrappers] == ["zero"]


def test_without_use_zero_nothing_is_sharded():
    assert translate({"use_zero": False}).wrappers == []


def test_use_zero_without_a_process_group_trains_unsharded():
    """One process: nothing to shard across; the optimizer is the one VISSL shards, with a warning."""
    model = nn.Linear(3, 2)
    config = {"OPTIMIZER": {"use_zero": True, "num_epochs": 2, "param_schedulers": {"lr": COSINE}}}
    with pytest.warns(optiplug.OptiplugWarning, match="not sharded"):
        built = optiplug.build(config, model, steps_per_epoch=2)
    assert type(built.optimizer) is torch.optim.SGD


@pytest.mark.parametrize(
    ("optimizer", "root", "path", "words"),
    [
        ({"use_zero": "yes"}, {}, "OPTIMIZER.use_zero", "true or false"),
        ({"name": "sgd_fsdp", "use_larc": True, "use_zero": True}, {}, "OPTIMIZER.use_zero", "use_larc"),
        ({}, {"MODEL": {"SHARDED_DDP_SETUP": {"USE_SDP": 1}}}, "MODEL.SHARDED_DDP_SETUP.USE_SDP", "true or false"),
        ({"name": "zero"}, {}, "OPTIMIZER.name", "write use_zero: true"),
    ],
)
def test_use_zero_errors(optimizer, root, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        translate(optimizer, **root)
    assert info.value.path == path
    assert words in str(info.value)
