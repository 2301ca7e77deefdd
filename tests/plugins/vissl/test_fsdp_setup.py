"""MODEL.FSDP_CONFIG.AUTO_SETUP_FSDP: VISSL's infer_fsdp_setup (vissl/utils/hydra_config.py) sets
OPTIMIZER.construct_single_param_group_only=True and, with use_larc, name='sgd_fsdp'."""

from __future__ import annotations

import pytest
import torch

import optiplug

BLOCK = {"name": "sgd", "regularize_bn": False, "weight_decay": 1e-4}


def _config(block, fsdp):
    model = {"FSDP_CONFIG": {"AUTO_SETUP_FSDP": fsdp}}
    return {"config": {"MODEL": model, "OPTIMIZER": block}}


@pytest.mark.parametrize("use_larc", [False, True])
def test_auto_setup_fsdp_is_the_block_vissl_infers(use_larc):
    block = {**BLOCK, "use_larc": use_larc}
    inferred = {**block, "construct_single_param_group_only": True, "name": "sgd_fsdp" if use_larc else "sgd"}
    got = optiplug.to_recipe(_config(block, True), steps_per_epoch=3)
    assert got == optiplug.to_recipe(_config(inferred, False), steps_per_epoch=3)
    assert got != optiplug.to_recipe(_config(block, False), steps_per_epoch=3)


def test_auto_setup_fsdp_builds_one_group():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    built = optiplug.build(_config(BLOCK, True), model, steps_per_epoch=3)
    assert len(built.optimizer.param_groups) == 1
    assert built.optimizer.param_groups[0]["weight_decay"] == 1e-4


def test_auto_setup_fsdp_must_be_a_flag():
    with pytest.raises(optiplug.ConfigError) as caught:
        optiplug.to_recipe(_config(BLOCK, "yes"))
    assert caught.value.path == "config.MODEL.FSDP_CONFIG.AUTO_SETUP_FSDP"
