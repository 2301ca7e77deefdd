"""Fuzzed VISSL configs: a build that trains three steps, or a ConfigError naming where; never another exception.

The bases cover what the dialect reads: the seed page's schedules (composite warmups,
multistep by epoch, cosine with restarts), LARC, the head's own lr and weight decay,
auto-scaling from the build's batch and from DATA / DISTRIBUTED, weight-decay schedules,
the param-group options and the MODEL keys.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from torch import nn

import optiplug
from fuzzing import FUZZ_SETTINGS, build_and_train, fuzz_seed, mutated_configs

LINEAR_WARMUP_COSINE = {
    "name": "composite",
    "schedulers": [
        {"name": "linear", "start_value": 0.6, "end_value": 4.8},
        {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
    ],
    "interval_scaling": ["rescaled", "fixed"],
    "update_interval": "step",
    "lengths": [0.1, 0.9],
}

BASES = [
    {  # the seed's linear warmup + cosine, the default constructor's options
        "OPTIMIZER": {
            "name": "sgd",
            "weight_decay": 0.0001,
            "momentum": 0.9,
            "nesterov": True,
            "num_epochs": 2,
            "regularize_bn": False,
            "regularize_bias": True,
            "non_regularized_parameters": ["conv1"],
            "param_schedulers": {"lr": LINEAR_WARMUP_COSINE},
        }
    },
    {  # LARC with every option, cosine with restarts
        "OPTIMIZER": {
            "name": "sgd",
            "use_larc": True,
            "larc_config": {"clip": False, "eps": "1e-08", "trust_coefficient": 0.001},
            "num_epochs": 2,
            "param_schedulers": {
                "lr": {
                    "name": "cosine_warm_restart",
                    "start_value": 0.15,
                    "end_value": 0.00015,
                    "restart_interval_length": 0.5,
                    "wave_type": "half",
                }
            },
        }
    },
    {  # the head's own lr and weight decay, Adam, a weight-decay schedule
        "OPTIMIZER": {
            "name": "adamw",
            "betas": [0.9, 0.95],
            "num_epochs": 2,
            "head_optimizer_params": {"use_different_lr": True, "use_different_wd": True, "weight_decay": 0.001},
            "param_schedulers": {
                "lr": {"name": "cosine", "start_value": 0.01, "end_value": 0.0},
                "lr_head": {"name": "multistep", "values": [0.1, 0.01], "milestones": [1], "update_interval": "epoch"},
                "weight_decay": {"name": "linear", "start_value": 0.04, "end_value": 0.4, "update_interval": "step"},
            },
        }
    },
    {  # auto-scaling from a whole VISSL config's DATA and DISTRIBUTED, a warmup that is removed or kept
        "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": 32}},
        "DISTRIBUTED": {"NUM_NODES": 2, "NUM_PROC_PER_NODE": 4},
        "OPTIMIZER": {
            "name": "sgd",
            "num_epochs": 2,
            "param_schedulers": {
                "lr": {
                    **LINEAR_WARMUP_COSINE,
                    "auto_lr_scaling": {
                        "auto_scale": True,
                        "base_value": 0.3,
                        "base_lr_batch_size": 256,
                        "scaling_type": "sqrt",
                    },
                }
            },
        },
    },
    {  # multistep by epoch, auto-scaled linearly, rmsprop
        "OPTIMIZER": {
            "name": "rmsprop",
            "alpha": 0.9,
            "num_epochs": 3,
            "param_schedulers": {
                "lr": {
                    "name": "multistep",
                    "values": [0.01, 0.001, 0.0001],
                    "milestones": [1, 2],
                    "update_interval": "epoch",
                    "auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 256},
                }
            },
        }
    },
    {  # the seed's multiple warmups without name: composite, one group only, a weight-decay head schedule
        "config": {
            "OPTIMIZER": {
                "name": "sgd",
                "num_epochs": 2,
                "construct_single_param_group_only": False,
                "head_optimizer_params": {"use_different_wd": True, "weight_decay": 0.0},
                "param_schedulers": {
                    "lr": {
                        "schedulers": [
                            {"name": "linear", "start_value": 0.6, "end_value": 4.8},
                            {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
                            {"name": "linear", "start_value": 0.0048, "end_value": 2.114},
                            {"name": "cosine", "start_value": 2.114, "end_value": 0.0048},
                        ],
                        "update_interval": "step",
                        "interval_scaling": ["rescaled", "rescaled", "rescaled", "rescaled"],
                        "lengths": [0.0256, 0.48722, 0.0256, 0.46166],
                    },
                    "weight_decay_head": {"name": "constant", "value": 0.0005},
                },
            },
            "MODEL": {"NON_TRAINABLE_PARAMS": ["trunk.bn1.weight"]},
        }
    },
    {  # VISSL's LARS, polynomial and step schedules in a composite
        "OPTIMIZER": {
            "name": "lars",
            "eta": 0.002,
            "exclude_bias_and_norm": True,
            "num_epochs": 2,
            "param_schedulers": {
                "lr": {
                    "name": "composite",
                    "schedulers": [
                        {"name": "step", "values": [0.1, 0.05]},
                        {"name": "polynomial", "base_value": 0.05, "power": 2.0},
                    ],
                    "lengths": [0.5, 0.5],
                    "interval_scaling": ["fixed", "rescaled"],
                },
            },
        }
    },
]


class TrunkHeads(nn.Module):
    """A trunk (conv, norm) and VISSL's ``heads`` list: the head rules have something to match."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential()
        self.trunk.add_module("conv1", nn.Conv2d(2, 3, 3))
        self.trunk.add_module("bn1", nn.BatchNorm2d(3))
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads[0](self.trunk(x).mean(dim=(2, 3)))


def build(config, model):
    return optiplug.build(config, model, steps_per_epoch=2, batch_size_per_device=16)


def test_bases_build():
    for base in BASES:
        assert build_and_train(base, build, TrunkHeads) == "built"


@FUZZ_SETTINGS
@fuzz_seed
@given(mutated_configs(BASES))
def test_fuzzed_vissl_configs(config):
    build_and_train(config, build, TrunkHeads)


def test_an_empty_head_optimizer_params_block():
    config = {"OPTIMIZER": {"name": "sgd", "num_epochs": 2, "head_optimizer_params": None}}
    with pytest.raises(optiplug.ConfigError, match=r"OPTIMIZER.head_optimizer_params: expected a mapping"):
        build(config, TrunkHeads())
