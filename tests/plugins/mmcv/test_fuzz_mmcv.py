"""Fuzzed MMCV configs: a build that trains three steps, or a ConfigError naming where; never another exception.

The bases cover what the dialect reads: paramwise_options (with lars_exclude) and
paramwise_cfg (custom_keys), warmups by iteration and by epoch, momentum_config, the
cyclic, one-cycle and restart policies, the three accumulation hooks with grad_clip,
EpochBasedRunner, total_epochs and IterBasedRunner.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given

import optiplug
from fuzzing import FUZZ_SETTINGS, build_and_train, fuzz_seed, mutated_configs

STEPS_PER_EPOCH = 3

BASES = [
    {  # MMSelfSup's tutorial: regexes, a linear warmup by iteration, cosine momentum, clipping
        "optimizer": {
            "type": "SGD",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "paramwise_options": {
                "(bn|gn)(\\d+)?.(weight|bias)": {"weight_decay": 0.0},
                "bias": {"weight_decay": 0.0, "lr_mult": 2},
                "\\Ahead.": {"lr_mult": 10, "momentum": 0.5},
            },
        },
        "optimizer_config": {"grad_clip": {"max_norm": 35, "norm_type": 2}},
        "lr_config": {
            "policy": "CosineAnnealing",
            "min_lr_ratio": 0.01,
            "by_epoch": False,
            "warmup": "linear",
            "warmup_iters": 2,
            "warmup_ratio": 0.001,
        },
        "momentum_config": {"policy": "CosineAnnealing", "min_momentum_ratio": 0.9},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 2},
    },
    {  # MMCV 1.x paramwise_cfg, AdamW, a step policy with an exp warmup by epoch, MMSelfSup accumulation
        "optimizer": {
            "type": "AdamW",
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "weight_decay": 0.05,
            "paramwise_cfg": {
                "norm_decay_mult": 0.0,
                "bias_lr_mult": 2.0,
                "bias_decay_mult": 0.5,
                "custom_keys": {"head": {"lr_mult": 10, "decay_mult": 0.1}},
            },
        },
        "optimizer_config": {
            "type": "DistOptimizerHook",
            "update_interval": 2,
            "grad_clip": {"max_norm": 1.0, "norm_type": "inf"},
        },
        "lr_config": {
            "policy": "Step",
            "step": [1],
            "gamma": 0.1,
            "min_lr": 1e-5,
            "warmup": "exp",
            "warmup_iters": 1,
            "warmup_ratio": 0.1,
            "warmup_by_epoch": True,
        },
        "momentum_config": {"policy": "Step", "step": 1, "gamma": 0.9},
        "total_epochs": 2,
    },
    {  # the tutorial's cyclic lr and momentum on an IterBasedRunner, MMCV's cumulative hook
        "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.95, "weight_decay": 1e-4, "nesterov": True},
        "optimizer_config": {
            "type": "GradientCumulativeOptimizerHook",
            "cumulative_iters": 2,
            "grad_clip": {"max_norm": 10},
        },
        "lr_config": {"policy": "cyclic", "target_ratio": (10, 1e-4), "cyclic_times": 1, "step_ratio_up": 0.4},
        "momentum_config": {"policy": "cyclic", "target_ratio": [0.85 / 0.95, 1], "cyclic_times": 1},
        "runner": {"type": "IterBasedRunner", "max_iters": 8},
    },
    {  # MMSelfSup's SimCLR: LARS with lars_exclude, one-cycle lr and momentum by iteration
        "optimizer": {
            "type": "LARS",
            "lr": 4.8,
            "momentum": 0.9,
            "weight_decay": 1e-6,
            "paramwise_options": {
                "(bn|gn)(\\d+)?.(weight|bias)": {"weight_decay": 0.0, "lars_exclude": True},
                "bias": {"weight_decay": 0.0, "lars_exclude": True},
            },
        },
        "optimizer_config": {},
        "lr_config": {"policy": "OneCycle", "max_lr": 0.5, "pct_start": 0.25, "three_phase": True},
        "momentum_config": {"policy": "OneCycle", "base_momentum": 0.85, "max_momentum": 0.95},
        "runner": {"type": "IterBasedRunner", "max_iters": 6},
    },
    {  # restarts, a constant warmup by epoch, Adam's beta1 driven by a linear momentum policy
        "optimizer": {"type": "Adam", "lr": 0.01, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 1e-4},
        "lr_config": {
            "policy": "CosineRestart",
            "periods": [2, 4],
            "restart_weights": [1, 0.5],
            "min_lr": 1e-5,
            "by_epoch": False,
            "warmup": "constant",
            "warmup_iters": 1,
            "warmup_by_epoch": True,
        },
        "momentum_config": {"policy": "LinearAnnealing", "min_momentum": 0.85, "by_epoch": False},
        "optimizer_config": {"update_interval": 2},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 2},
    },
    {  # MMSelfSup's StepFixCosineAnnealing, flat cosine and poly, without runner (the length from build)
        "optimizer": {"type": "RMSprop", "lr": 0.01, "momentum": 0.9, "alpha": 0.9},
        "lr_config": {
            "policy": "StepFixCosineAnnealing",
            "min_lr": 0.0,
            "warmup": "linear",
            "warmup_iters": 2,
            "by_epoch": False,
        },
        "optimizer_config": {"type": "OptimizerHook", "grad_clip": None},
        "total_epochs": 3,
    },
    {
        "optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9},
        "lr_config": {"policy": "Poly", "power": 2.0, "min_lr": 1e-4, "by_epoch": True},
        "momentum_config": {"policy": "Cyclic", "by_epoch": False, "target_ratio": 0.9, "step_ratio_up": 0.5},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 3},
    },
    {
        "optimizer": {"type": "SGD", "lr": 0.05, "weight_decay": 1e-4, "paramwise_cfg": {"dwconv_decay_mult": 0.0}},
        "lr_config": {"policy": "FlatCosineAnnealing", "start_percent": 0.5, "min_lr": 0, "by_epoch": False},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 2},
    },
]


def build(config, model):
    return optiplug.build(config, model, steps_per_epoch=STEPS_PER_EPOCH)


def mutated(base: int, *changes: tuple[tuple, object]) -> dict:
    """Base ``base`` with the value at each key path replaced."""
    config = copy.deepcopy(BASES[base])
    for path, value in changes:
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return config


# What the fuzzing found, each fixed at its cause; kept as regressions.
FINDINGS = {
    "runner type a dict (TypeError: unhashable)": mutated(6, (("runner", "type"), {"policy": "Cyclic"})),
    "runner type a list (TypeError: unhashable)": mutated(2, (("runner", "type"), [None])),
    "optimizer hook type a dict (TypeError: unhashable)": mutated(5, (("optimizer_config", "type"), {"a": 1})),
    "cyclic target_ratio 10**20 (OverflowError in the schedule)": mutated(
        2, (("momentum_config", "target_ratio"), [10**20, 1])
    ),
    "Step step 10**20 (OverflowError in the schedule)": mutated(1, (("momentum_config", "step"), 10**20)),
    "Step step list with 10**20": mutated(1, (("lr_config", "step"), [1, 10**20])),
    "runner max_iters 10**20": mutated(2, (("runner", "max_iters"), 10**20)),
    "update_interval 10**20": mutated(1, (("optimizer_config", "update_interval"), 10**20)),
}


@pytest.mark.parametrize("config", FINDINGS.values(), ids=FINDINGS.keys())
def test_past_findings_are_config_errors(config):
    assert build_and_train(config, build) == "refused"


def test_bases_build():
    for base in BASES:
        assert build_and_train(base, build) == "built"


@FUZZ_SETTINGS
@fuzz_seed
@given(mutated_configs(BASES))
def test_fuzzed_mmcv_configs(config):
    build_and_train(config, build)
