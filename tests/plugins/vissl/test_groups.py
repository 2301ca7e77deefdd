"""Param groups: VISSL's default constructor (spec 1.3), restated here module by module as
the reference, against what ``optiplug.build`` makes of a trunk + head model."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import optiplug

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm)
TRUNK_LR, HEAD_LR, MAIN_WD, HEAD_WD = 0.1, 0.5, 1e-4, 3e-4


def vissl_default_groups(model, regularize_bn=False, regularize_bias=True, non_regularized=()):
    """Spec 1.3: the six lists of VISSL's default constructor, each as (lr source, wd source)."""
    lists = {key: [] for key in ("trunk", "trunk_unreg", "head", "head_unreg", "remaining", "remaining_unreg")}
    for name, module in model.named_modules():
        part = "head" if "head" in name else "trunk"
        if isinstance(module, LAYERS):
            lists[part] += [module.weight_g, module.weight_v] if hasattr(module, "weight_g") else [module.weight]
            if module.bias is not None:
                lists[part if regularize_bias else f"{part}_unreg"].append(module.bias)
        elif isinstance(module, NORMS):
            lists[part if regularize_bn else f"{part}_unreg"].append(module.weight)
            lists[part if regularize_bn and regularize_bias else f"{part}_unreg"].append(module.bias)
        else:
            lists["remaining"] += list(module.parameters(recurse=False))
    named = [p for n, p in model.named_parameters() if any(s in n for s in non_regularized)]
    for key in ("trunk", "head", "remaining"):
        lists[key] = [p for p in lists[key] if not any(p is q for q in named)]
    unregularized = lists["trunk_unreg"] + lists["head_unreg"]
    lists["remaining_unreg"] = [p for p in named if not any(p is q for q in unregularized)]
    sources = {
        "trunk": ("lr", "main"),
        "trunk_unreg": ("lr", "zero"),
        "head": ("lr_head", "head"),
        "head_unreg": ("lr_head", "zero"),
        "remaining": ("lr", "main"),
        "remaining_unreg": ("lr", "zero"),
    }
    return {id(p): sources[key] for key, params in lists.items() for p in params}


def config(**optimizer):
    schedulers = {"lr": {"name": "constant", "value": TRUNK_LR}, "lr_head": {"name": "constant", "value": HEAD_LR}}
    base = {
        "weight_decay": MAIN_WD,
        "head_optimizer_params": {"use_different_lr": True, "use_different_wd": True, "weight_decay": HEAD_WD},
        "param_schedulers": schedulers,
    }
    return {"OPTIMIZER": base | optimizer}


def options_by_param(built):
    return {id(p): (g["lr"], g["weight_decay"]) for g in built.optimizer.param_groups for p in g["params"]}


def expected_options(model, **flags):
    lrs, wds = {"lr": TRUNK_LR, "lr_head": HEAD_LR}, {"main": MAIN_WD, "head": HEAD_WD, "zero": 0.0}
    return {key: (lrs[lr], wds[wd]) for key, (lr, wd) in vissl_default_groups(model, **flags).items()}


FLAGS = [
    {},
    {"regularize_bn": True},
    {"regularize_bias": False},
    {"regularize_bn": True, "regularize_bias": False},
    {"non_regularized": ["class_token", "fc.weight", "bn1.weight", "in_proj"]},
]


@pytest.mark.parametrize("flags", FLAGS, ids=["defaults", "bn", "no-bias", "bn-no-bias", "named"])
def test_every_parameter_where_vissl_puts_it(trunk_head, flags):
    written = {"non_regularized_parameters" if k == "non_regularized" else k: v for k, v in flags.items()}
    built = optiplug.build(config(**written), trunk_head, steps_per_epoch=2)
    got, expected = options_by_param(built), expected_options(trunk_head, **flags)
    assert set(got) == set(expected) == {id(p) for p in trunk_head.parameters()}
    names = {id(p): n for n, p in trunk_head.named_parameters()}
    assert {names[k]: v for k, v in got.items()} == {names[k]: v for k, v in expected.items()}
    assert len(built.optimizer.param_groups) == len(set(expected.values()))  # D5: the fewest groups


def test_head_quirks(trunk_head):
    """Head non-Linear/Conv/norm parameters take the trunk's lr; MultiheadAttention's in_proj_bias is decayed."""
    built = optiplug.build(config(regularize_bias=False), trunk_head, steps_per_epoch=2)
    got = options_by_param(built)
    assert got[id(trunk_head.heads[0].prototypes.weight)] == (TRUNK_LR, MAIN_WD)
    assert got[id(trunk_head.trunk.attn.in_proj_bias)] == (TRUNK_LR, MAIN_WD)
    assert got[id(trunk_head.trunk.attn.out_proj.bias)] == (TRUNK_LR, 0.0)
    assert got[id(trunk_head.heads[0].fc.bias)] == (HEAD_LR, 0.0)


def test_same_values_share_a_group(trunk_head):
    """Without a different head lr or wd, VISSL's six lists hold two distinct settings: two groups."""
    built = optiplug.build({"OPTIMIZER": {"weight_decay": 5e-4}}, trunk_head, steps_per_epoch=2, num_epochs=90)
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0.0, 5e-4]


def test_head_weight_decay_follows_main_unless_use_different_wd(trunk_head):
    built = optiplug.build(
        {"OPTIMIZER": {"weight_decay": 5e-4, "head_optimizer_params": {"weight_decay": 0.3}}},
        trunk_head,
        steps_per_epoch=2,
    )
    assert options_by_param(built)[id(trunk_head.heads[0].fc.weight)] == (0.1, 5e-4)


def test_scheduled_main_weight_decay_does_not_reach_the_head(trunk_head, per_update):
    schedulers = {
        "lr": {"name": "constant", "value": 0.1},
        "weight_decay": {"name": "linear", "start_value": 1e-4, "end_value": 1e-3},
    }
    built = optiplug.build(
        {"OPTIMIZER": {"num_epochs": 2, "param_schedulers": schedulers}}, trunk_head, steps_per_epoch=5
    )
    by_group = per_update(built, "weight_decay")
    conv = trunk_head.trunk.conv1.weight
    fc = trunk_head.heads[0].fc.weight
    index = {
        name: next(i for i, g in enumerate(built.optimizer.param_groups) if any(p is q for p in g["params"]))
        for name, q in (("conv", conv), ("fc", fc))
    }
    assert by_group[index["conv"]] == pytest.approx([1e-4 + (1e-3 - 1e-4) * k / 10 for k in range(10)])
    assert by_group[index["fc"]] == [1e-4] * 10  # the head keeps OPTIMIZER.weight_decay


def test_weight_decay_head_schedule_reaches_only_the_regularized_head(trunk_head, per_update):
    schedulers = {
        "lr": {"name": "constant", "value": 0.1},
        "weight_decay": {"name": "constant", "value": 2e-4},
        "weight_decay_head": {"name": "linear", "start_value": 0.0, "end_value": 1.0},
    }
    built = optiplug.build(
        {"OPTIMIZER": {"num_epochs": 2, "param_schedulers": schedulers}}, trunk_head, steps_per_epoch=5
    )
    rows = per_update(built, "weight_decay")
    groups = built.optimizer.param_groups

    def values_of(param):
        return rows[next(i for i, g in enumerate(groups) if any(p is param for p in g["params"]))]

    head = trunk_head.heads[0]
    assert values_of(head.fc.weight) == pytest.approx([k / 10 for k in range(10)])  # linear is a step schedule
    assert values_of(head.bn.weight) == [0.0] * 10
    assert values_of(trunk_head.trunk.conv1.weight) == [2e-4] * 10  # constant: epoch interval, no change


def test_weight_norm_head_layer(trunk_head):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the old weight_norm VISSL's heads use
        torch.nn.utils.weight_norm(trunk_head.heads[0].fc)
    built = optiplug.build(config(), trunk_head, steps_per_epoch=2)
    got = options_by_param(built)
    assert got[id(trunk_head.heads[0].fc.weight_g)] == got[id(trunk_head.heads[0].fc.weight_v)] == (HEAD_LR, HEAD_WD)


def test_dino_constructor(trunk_head):
    dino = {
        "param_group_constructor": "dino",
        "weight_decay": MAIN_WD,
        "param_schedulers": {"lr": {"name": "constant", "value": TRUNK_LR}},
    }
    built = optiplug.build({"OPTIMIZER": dino}, trunk_head, steps_per_epoch=2)
    got = options_by_param(built)
    for name, param in trunk_head.named_parameters():
        unregularized = name.endswith(".bias") or "norm" in name
        assert got[id(param)] == (TRUNK_LR, 0.0 if unregularized else MAIN_WD), name


def test_single_param_group(trunk_head):
    built = optiplug.build(config(construct_single_param_group_only=True), trunk_head, steps_per_epoch=2)
    assert len(built.optimizer.param_groups) == 1
    assert (built.optimizer.param_groups[0]["lr"], built.optimizer.param_groups[0]["weight_decay"]) == (
        TRUNK_LR,
        MAIN_WD,
    )


def test_vissl_rule_kinds_in_a_canonical_recipe(trunk_head):
    """The rule kinds are usable outside the dialect too."""
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 1e-4},
        "rules": [
            {"kind": "vissl_groups", "weight_decay": 1e-4, "head_weight_decay": 1e-3},
            {"kind": "vissl_head", "set": {"lr_mult": 10}},
        ],
    }
    built = optiplug.build(recipe, trunk_head)
    got = options_by_param(built)
    assert got[id(trunk_head.heads[0].fc.weight)] == pytest.approx((1.0, 1e-3))
    assert got[id(trunk_head.heads[0].bn.weight)] == pytest.approx((1.0, 0.0))
    assert got[id(trunk_head.trunk.conv1.weight)] == pytest.approx((0.1, 1e-4))


def test_a_head_lr_without_a_head_module_warns(small):
    config = {
        "OPTIMIZER": {
            "head_optimizer_params": {"use_different_lr": True},
            "param_schedulers": {"lr_head": {"name": "constant", "value": 1.0}},
        }
    }
    with pytest.warns(optiplug.OptiplugWarning, match="vissl head \\(lr_head\\)"):
        optiplug.build(config, small, steps_per_epoch=2, num_epochs=100)
