"""A VISSL ``config:`` root without OPTIMIZER: VISSL trains with its default block, and so does optiplug."""

from __future__ import annotations

import pytest
import torch

import optiplug
from optiplug import OptiplugWarning


def test_config_root_without_optimizer_reads_vissl_defaults():
    config = {"config": {"MODEL": {}, "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": 32}}}}
    with pytest.warns(OptiplugWarning, match=r"config.OPTIMIZER: none given; VISSL trains with its default"):
        built = optiplug.build(config, torch.nn.Linear(2, 2), steps_per_epoch=3)
    # vissl/config/defaults.yaml: sgd, base lr 0.1, momentum 0.9, nesterov False, weight_decay 1e-4
    group = built.optimizer.param_groups[0]
    assert type(built.optimizer) is torch.optim.SGD
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, False, 1e-4)


def test_a_config_root_of_something_else_is_not_vissl():
    with pytest.raises(optiplug.ConfigError):
        optiplug.to_recipe({"config": {"foo": 1}})
