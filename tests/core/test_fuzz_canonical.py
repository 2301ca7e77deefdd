"""Fuzzed canonical recipes: a build that trains three steps, or a ConfigError; never another exception.

Besides the core and torch schedules, the bases use every plugin's recipe-level features:
restarts and normalized decay, the cyclical shapes, VISSL's cosine_warm_restart, LARC,
LARS, adamwr and layer-wise lr decay.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given

import optiplug
from fuzzing import FUZZ_SETTINGS, build_and_train, fuzz_seed, mutated_configs

RESTARTS = {
    "name": "restarts",
    "period_epochs": 1,
    "t_mult": 1.5,
    "rounding": "ceil",
    "warmup_epochs": 1,
    "peak_decay": 0.5,
    "min_value": 1e-7,
    "shape": {"name": "arccosine"},
}

BASES = [
    {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
        "rules": [
            {"kind": "norm", "set": {"weight_decay": 0}},
            {"kind": "bias", "set": {"weight_decay": 0}},
            {"kind": "regex", "pattern": "^head", "set": {"lr_mult": 10}},
        ],
        "schedules": {
            "lr": {
                "name": "composite",
                "schedulers": [
                    {"name": "linear", "start_value": 0.01, "end_value": 0.1},
                    {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
                ],
                "lengths": [0.25, 0.75],
                "interval_scaling": ["rescaled", "fixed"],
            },
            "momentum": {"name": "linear", "start_value": 0.85, "end_value": 0.95},
        },
        "clip": {"max_norm": 1.0, "norm_type": 2.0},
        "accumulation": {"steps": 2},
        "run": {"num_epochs": 2, "steps_per_epoch": 6},
    },
    {
        "optimizer": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.05},
        "rules": [
            {"kind": "ndim", "max": 1, "set": {"weight_decay": 0}},
            {"kind": "module_type", "types": ["Linear"], "set": {"lr_mult": 2}},
        ],
        "schedules": {
            "lr": {"name": "multistep", "values": [1e-3, 1e-4], "milestones": [1], "update_interval": "epoch"},
            "weight_decay": {"name": "cosine", "start_value": 0.04, "end_value": 0.4},
        },
        "lr_scaling": {"base_batch_size": 256, "method": "sqrt"},
        "run": {"num_epochs": 2, "steps_per_epoch": 2, "batch_size_per_device": 64, "world_size": 8},
    },
    {  # adamwr's example as a recipe: restarts, normalized decay, LARC around AdamW (paper convention)
        "optimizer": {"name": "adamwr", "lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.025},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}, {"kind": "bias", "set": {"weight_decay": 0}}],
        "schedules": {
            "lr": RESTARTS,
            "weight_decay": {"name": "normalized_decay", "batch_size": 32, "epoch_size": 96, "schedule": RESTARTS},
        },
        "wrappers": [{"name": "larc", "clip": True, "trust_coefficient": 0.02, "eps": 1e-8}],
        "run": {"num_epochs": 3, "steps_per_epoch": 3},
    },
    {  # cyclical lr and momentum (absolute, upside down), a warmup composite, MMSelfSup's LARS
        "optimizer": {"name": "lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6, "eta": 0.001},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0, "lars_exclude": True}}],
        "schedules": {
            "lr": {
                "name": "composite",
                "schedulers": [
                    {"name": "linear", "start_value": 0.0, "end_value": 0.4},
                    {"name": "exp_range", "min_value": 0.01, "max_value": 0.4, "cycle_fraction": 0.2, "gamma": 0.999},
                ],
                "lengths": [0.1, 0.9],
                "interval_scaling": ["rescaled", "rescaled"],
            },
            "momentum": {"name": "triangular", "cycle_epochs": 2, "min_value": 0.95, "max_value": 0.85},
        },
        "run": {"num_epochs": 4, "steps_per_epoch": 2},
    },
    {  # layer-wise lr decay, triangular2 and VISSL's cosine_warm_restart, accumulation per iteration
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
        "rules": [
            {"kind": "layer_decay", "decay": 0.75, "preset": "timm_vit", "num_layers": 2},
            {"kind": "module_path", "prefix": "head", "set": {"lr_mult": 2}},
        ],
        "schedules": {
            "lr": {"name": "triangular2", "cycle_epochs": 1, "min_value": 1e-5},
            "weight_decay": {
                "name": "cosine_warm_restart",
                "start_value": 0.05,
                "end_value": 0.005,
                "restart_interval_length": 0.5,
                "wave_type": "full",
                "lr_multiplier": 0.5,
            },
        },
        "accumulation": {"steps": 2, "schedule_clock": "iterations"},
        "run": {"num_epochs": 2, "steps_per_epoch": 3},
    },
    {
        "optimizer": {"name": "rmsprop", "lr": 0.01},
        "schedules": {"lr": {"name": "step_with_fixed_gamma", "base_value": 0.01, "num_decays": 2, "gamma": 0.5}},
        "run": {"total_steps": 5, "steps_per_epoch": 5},
    },
]


def build(config, model):
    return optiplug.build(config, model)


def test_a_multiplier_that_is_a_string_is_a_config_error():
    """A fuzzing finding: lr_mult '' passed the rule check and failed with a TypeError in build()."""
    config = copy.deepcopy(BASES[1])
    config["rules"][1]["set"]["lr_mult"] = ""
    with pytest.raises(
        optiplug.ConfigError, match=r"rules\[1\]\.set\.lr_mult: a multiplier must be a number >= 0, got ''"
    ):
        build(config, None)


def test_bases_build():
    for base in BASES:
        assert build_and_train(base, build) == "built"


@FUZZ_SETTINGS
@fuzz_seed
@given(mutated_configs(BASES))
def test_fuzzed_canonical_recipes(config):
    build_and_train(config, build)
