"""VISSL's other param-group constructors (spec 1.4): ``lr_decay`` for a ViT and a ResNet,
``linear_eval_heads``, and ``MODEL.NON_TRAINABLE_PARAMS``; each restated here from the spec
as the reference, checked parameter by parameter and update by update."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

import optiplug

EPOCHS, PER_EPOCH = 2, 3
START = 0.4


def cosine(k: int) -> float:
    """The lr schedule of every test here: cosine START -> 0, step interval, at w = k / total."""
    return 0.5 * START * (1 + math.cos(math.pi * k / (EPOCHS * PER_EPOCH)))


def optimizer_block(**keys) -> dict:
    lr = {"name": "cosine", "start_value": START, "end_value": 0.0, "update_interval": "step"}
    return {"num_epochs": EPOCHS, "weight_decay": 0.05, "param_schedulers": {"lr": lr}, **keys}


def lrs_and_decays(built, model, updates=EPOCHS * PER_EPOCH):
    """name -> [(lr, weight_decay) before each update]."""
    names = {id(p): n for n, p in model.named_parameters()}
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(updates):
        for group in built.optimizer.param_groups:
            for p in group["params"]:
                rows.setdefault(names[id(p)], []).append((group["lr"], group["weight_decay"]))
        built.optimizer.step()
        built.scheduler.step()
    return rows


def assert_rows(got, expected, name):
    """Equal (lr, weight_decay) rows, to float rounding."""
    flat = [x for pair in got for x in pair]
    assert flat == pytest.approx([x for pair in expected for x in pair], rel=1e-12, abs=1e-15), name


# -- lr_decay, vision transformer -----------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(4)
        self.attn = nn.Linear(4, 4)
        self.mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))


class ViT(nn.Module):
    """VISSL's ViT names: patch_embed, cls_token, pos_embed, blocks.k, norm, and heads."""

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 4, 2, stride=2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.blocks = nn.ModuleList(Block() for _ in range(depth))
        self.norm = nn.LayerNorm(4)
        self.heads = nn.ModuleList([nn.Linear(4, 10)])


def vit_depth(name: str, num_layers: int) -> int:
    """Spec 1.4, ViT: 'heads' -> L + 1; patch_embed / pos_embed / cls_token -> 0; blocks.k. -> k + 1; else L."""
    if "heads" in name:
        return num_layers + 1
    if any(part in name for part in ("patch_embed", "pos_embed", "cls_token")):
        return 0
    block = re.search(r"blocks\.([0-9]+)\.", name)
    return int(block.group(1)) + 1 if block else num_layers


def vit_expected(name: str, k: int, decay: float, num_layers: int, weight_decay: float) -> tuple[float, float]:
    """lr = lr schedule * decay ** (L + 1 - depth); no decay for '.bias' and names with 'norm'."""
    regularized = not (name.endswith(".bias") or "norm" in name)
    lr = cosine(k) * decay ** (num_layers + 1 - vit_depth(name, num_layers))
    return lr, weight_decay if regularized else 0.0


def vit_config(decay: float = 0.65, **model) -> dict:
    trunk = {"NAME": "vision_transformer", **model}
    block = optimizer_block(param_group_constructor="lr_decay", layer_wise_lr_decay={"decay": decay})
    return {"OPTIMIZER": block, "MODEL": {"TRUNK": trunk}}


@pytest.mark.parametrize(("layers", "model_keys"), [(3, {}), (4, {"VISION_TRANSFORMERS": {"NUM_LAYERS": 4}})])
def test_vit_gets_the_per_depth_lrs_of_spec_1_4(layers, model_keys):
    """L is MODEL.TRUNK.VISION_TRANSFORMERS.NUM_LAYERS when written, else the model's number of blocks."""
    torch.manual_seed(0)
    model = ViT(depth=3)
    built = optiplug.build(vit_config(**model_keys), model, steps_per_epoch=PER_EPOCH)
    rows = lrs_and_decays(built, model)
    assert set(rows) == {n for n, _ in model.named_parameters()}
    for name, got in rows.items():
        expected = [vit_expected(name, k, 0.65, layers, 0.05) for k in range(EPOCHS * PER_EPOCH)]
        assert_rows(got, expected, name)


def test_vit_lr_decay_makes_the_fewest_groups():
    """One group per (depth, regularized) pair that occurs, as VISSL's keys, and no two alike."""
    model = ViT(depth=3)
    built = optiplug.build(vit_config(), model, steps_per_epoch=PER_EPOCH)
    pairs = {(vit_depth(n, 3), not (n.endswith(".bias") or "norm" in n)) for n, _ in model.named_parameters()}
    groups = built.optimizer.param_groups
    assert len(groups) == len(pairs) == 10  # depths 0..4, each decayed and not
    assert len({(g["lr"], g["weight_decay"]) for g in groups}) == len(groups)


def test_decay_one_merges_every_depth():
    model = ViT(depth=3)
    built = optiplug.build(vit_config(decay=1.0), model, steps_per_epoch=PER_EPOCH)
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0.0, 0.05]


def test_frozen_blocks_keep_their_depths():
    """Depths come from every parameter's name: freezing the first blocks changes nobody's lr."""
    model = ViT(depth=3)
    model.blocks[0].requires_grad_(False)
    built = optiplug.build(vit_config(), model, steps_per_epoch=PER_EPOCH)
    rows = lrs_and_decays(built, model, updates=1)
    assert "blocks.0.attn.weight" not in rows
    assert rows["blocks.1.attn.weight"] == [vit_expected("blocks.1.attn.weight", 0, 0.65, 3, 0.05)]


def test_scheduled_weight_decay_reaches_the_regularized_groups(per_update):
    config = vit_config()
    config["OPTIMIZER"]["param_schedulers"]["weight_decay"] = {"name": "linear", "start_value": 0.0, "end_value": 0.6}
    model = ViT(depth=2)
    built = optiplug.build(config, model, steps_per_epoch=PER_EPOCH)
    decays = per_update(built, "weight_decay")
    linear = [0.6 * k / (EPOCHS * PER_EPOCH) for k in range(EPOCHS * PER_EPOCH)]
    for group, row in zip(built.optimizer.param_groups, decays, strict=True):
        regularized = not any(n.endswith(".bias") or "norm" in n for n in names_of(group, model))
        assert row == (pytest.approx(linear) if regularized else [0.0] * len(linear))


def names_of(group, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for p in group["params"]]


# -- lr_decay, ResNet -------------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.downsample = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4))


class ResNetTrunk(nn.Module):
    """VISSL's ResNet names: trunk._feature_blocks.{conv1, bn1, layer1..layer4}."""

    def __init__(self) -> None:
        super().__init__()
        self._feature_blocks = nn.Module()
        self._feature_blocks.conv1 = nn.Conv2d(3, 4, 3)
        self._feature_blocks.bn1 = nn.BatchNorm2d(4)
        for stage in range(1, 5):
            setattr(self._feature_blocks, f"layer{stage}", nn.Sequential(Bottleneck()))


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = ResNetTrunk()
        self.heads = nn.ModuleList([nn.Linear(4, 10)])


def resnet_depth(name: str) -> int:
    """Spec 1.4, ResNet: _feature_blocks.conv1 / bn1 -> 0; .layerN. -> N; else 5 (L = 4)."""
    if "_feature_blocks.conv1" in name or "_feature_blocks.bn1" in name:
        return 0
    stage = re.search(r"\.layer([0-9]*)\.", name)
    return int(stage.group(1)) if stage else 5


def resnet_regularized(name: str, regularize_bn: bool, regularize_bias: bool) -> bool:
    """Spec 1.4, ResNet: '.bias' follows regularize_bias, then '.bn<k>.' names regularize_bn."""
    if name.endswith(".bias"):
        return regularize_bias
    if re.search(r"\.bn[0-9]*\.", name):
        return regularize_bn
    return True


@pytest.mark.parametrize(
    ("regularize_bn", "regularize_bias", "trunk"),
    [(False, True, {}), (True, False, {"NAME": "resnet"}), (True, True, {"NAME": "resnet"})],
    ids=["defaults-no-trunk-name", "bn-no-bias", "bn-bias"],
)
def test_resnet_depths_and_regularization(regularize_bn, regularize_bias, trunk):
    """Without MODEL.TRUNK.NAME the trunk is VISSL's default, resnet."""
    decay = 0.5
    block = optimizer_block(
        param_group_constructor="lr_decay",
        layer_wise_lr_decay={"decay": decay},
        regularize_bn=regularize_bn,
        regularize_bias=regularize_bias,
    )
    model = ResNet()
    config = {"OPTIMIZER": block} | ({"MODEL": {"TRUNK": trunk}} if trunk else {})
    built = optiplug.build(config, model, steps_per_epoch=PER_EPOCH)
    rows = lrs_and_decays(built, model)
    for name, got in rows.items():
        regularized = resnet_regularized(name, regularize_bn, regularize_bias)
        expected = [
            (cosine(k) * decay ** (4 + 1 - resnet_depth(name)), 0.05 if regularized else 0.0)
            for k in range(EPOCHS * PER_EPOCH)
        ]
        assert_rows(got, expected, name)
    assert rows["trunk._feature_blocks.layer1.0.downsample.1.weight"][0][1] == 0.05  # not a '.bn<k>.' name


# -- linear_eval_heads ----------------------------------------------------------------------------------------------


class EvalModel(nn.Module):
    """A trunk and two evaluation heads: heads.0 (BatchNorm + Linear), heads.1 (Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.heads = nn.ModuleList([nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 10)), nn.Linear(4, 10)])


EVAL_HEADS = [{"lr": 0.5, "weight_decay": 1e-3, "regularize_bn": True}, {"lr": 2.0}]


def eval_expected(name: str, k: int, heads: list[dict], weight_decay: float, regularize_bias: bool = True):
    """Spec 1.4: head i's lr is the lr schedule times heads[i].lr; its weight decay heads[i]'s (else the main)."""
    index = int(re.match(r"heads\.([0-9]*)", name).group(1))
    head = heads[index]
    is_bias, is_norm = name.endswith(".bias"), name.startswith("heads.0.0.")
    regularize_bn = head.get("regularize_bn", False)
    regularized = (regularize_bn and (not is_bias or regularize_bias)) if is_norm else (not is_bias or regularize_bias)
    return cosine(k) * head["lr"], head.get("weight_decay", weight_decay) if regularized else 0.0


@pytest.mark.parametrize("regularize_bias", [True, False])
def test_linear_eval_heads_per_head_lr_and_weight_decay(regularize_bias):
    model = EvalModel()
    model.trunk.requires_grad_(False)
    block = optimizer_block(
        param_group_constructor="linear_eval_heads", linear_eval_heads=EVAL_HEADS, regularize_bias=regularize_bias
    )
    built = optiplug.build({"OPTIMIZER": block}, model, steps_per_epoch=PER_EPOCH)
    rows = lrs_and_decays(built, model)
    assert set(rows) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, got in rows.items():
        expected = [eval_expected(name, k, EVAL_HEADS, 0.05, regularize_bias) for k in range(EPOCHS * PER_EPOCH)]
        assert_rows(got, expected, name)


def test_linear_eval_heads_never_updates_what_is_not_a_head():
    """VISSL puts trainable parameters outside the heads in no group: here lr 0 and weight decay 0."""
    torch.manual_seed(0)
    model = EvalModel()
    block = optimizer_block(param_group_constructor="linear_eval_heads", linear_eval_heads=EVAL_HEADS)
    built = optiplug.build({"OPTIMIZER": block}, model, steps_per_epoch=PER_EPOCH)
    trunk_before = {n: p.detach().clone() for n, p in model.trunk.named_parameters()}
    head_before = model.heads[1].weight.detach().clone()
    for _ in range(2):
        features = model.trunk(torch.randn(2, 3, 5, 5)).mean(dim=(2, 3))
        built.step(model.heads[0](features).sum() + model.heads[1](features).sum())
    assert all(torch.equal(p, trunk_before[n]) for n, p in model.trunk.named_parameters())
    assert not torch.equal(model.heads[1].weight, head_before)


# -- MODEL.NON_TRAINABLE_PARAMS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("constructor", ["default", "dino"])
def test_non_trainable_params_are_frozen_and_left_untouched(constructor):
    torch.manual_seed(0)
    model = EvalModel()
    frozen = ["trunk.0.weight", "heads.1.bias"]
    config = {
        "OPTIMIZER": optimizer_block(param_group_constructor=constructor),
        "MODEL": {"NON_TRAINABLE_PARAMS": frozen},
    }
    built = optiplug.build(config, model, steps_per_epoch=PER_EPOCH)
    params = dict(model.named_parameters())
    assert [n for n, p in params.items() if not p.requires_grad] == frozen
    group = next(g for g in built.optimizer.param_groups if any(p is params["trunk.0.weight"] for p in g["params"]))
    assert {id(p) for p in group["params"]} == {id(params[n]) for n in frozen}
    before = {n: params[n].detach().clone() for n in frozen}
    features = model.trunk(torch.randn(2, 3, 5, 5)).mean(dim=(2, 3))
    built.step(model.heads[0](features).sum() + model.heads[1](features).sum())
    assert all(params[n].grad is None and torch.equal(params[n], before[n]) for n in frozen)
    assert (group["lr"], group["weight_decay"]) == (0.0, 0.0)


# -- errors -----------------------------------------------------------------------------------------------------------


def build_error(config, model):
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model, steps_per_epoch=PER_EPOCH)
    return info.value


@pytest.mark.parametrize(
    ("keys", "path", "words"),
    [
        ({"layer_wise_lr_decay": {"decay": 0}}, "OPTIMIZER.layer_wise_lr_decay.decay", "must be in (0, 1]"),
        ({"layer_wise_lr_decay": {"decay": 1.5}}, "OPTIMIZER.layer_wise_lr_decay.decay", "in [0.0, 1.0], got 1.5"),
        ({"layer_wise_lr_decay": {"decy": 0.5}}, "OPTIMIZER.layer_wise_lr_decay.decy", "did you mean 'decay'"),
        (
            {"construct_single_param_group_only": True},
            "OPTIMIZER.construct_single_param_group_only",
            "only the default",
        ),
        ({"non_regularized_parameters": ["cls_token"]}, "OPTIMIZER.non_regularized_parameters", "never reads it"),
        (
            {"head_optimizer_params": {"use_different_lr": True}},
            "OPTIMIZER.head_optimizer_params.use_different_lr",
            "never reads it",
        ),
        ({"linear_eval_heads": [{"lr": 1.0}]}, "OPTIMIZER.linear_eval_heads", "param_group_constructor: linear_eval"),
    ],
)
def test_lr_decay_config_errors(keys, path, words):
    config = vit_config()
    config["OPTIMIZER"] |= keys
    error = build_error(config, ViT())
    assert error.path == path and words in str(error)


def test_lr_decay_needs_a_known_trunk():
    config = vit_config()
    config["MODEL"]["TRUNK"]["NAME"] = "vision_transformr"
    error = build_error(config, ViT())
    assert error.path == "MODEL.TRUNK.NAME"
    assert "did you mean 'vision_transformer'" in str(error)


@pytest.mark.parametrize(
    ("heads", "schedules", "path", "words"),
    [
        (None, {}, "OPTIMIZER.linear_eval_heads", "needs this list"),
        ([{"weight_decay": 0.1}], {}, "OPTIMIZER.linear_eval_heads[0].lr", "needs its lr"),
        ([{"lr": 1.0, "wd": 0.1}], {}, "OPTIMIZER.linear_eval_heads[0].wd", "accepted here: lr, regularize_bn"),
        ([{"lr": -1.0}], {}, "OPTIMIZER.linear_eval_heads[0].lr", ">= 0.0, got -1.0"),
        ([{"lr": 1.0, "regularize_bn": "no"}], {}, "OPTIMIZER.linear_eval_heads[0].regularize_bn", "true or false"),
        (
            [{"lr": 1.0}],
            {"weight_decay": {"name": "constant", "value": 0.1}},
            "OPTIMIZER.param_schedulers.weight_decay",
            "its linear_eval_heads entry's",
        ),
    ],
)
def test_linear_eval_heads_config_errors(heads, schedules, path, words):
    block = optimizer_block(param_group_constructor="linear_eval_heads")
    block["param_schedulers"] |= schedules
    if heads is not None:
        block["linear_eval_heads"] = heads
    error = build_error({"OPTIMIZER": block}, EvalModel())
    assert error.path == path and words in str(error)


def test_a_head_without_its_entry_is_an_error():
    block = optimizer_block(param_group_constructor="linear_eval_heads", linear_eval_heads=[{"lr": 1.0}])
    error = build_error({"OPTIMIZER": block}, EvalModel())
    assert error.path == "rules[0].heads"
    assert "'heads.1' is head 1, but 1 heads are configured" in str(error)


def test_non_trainable_param_names_are_checked():
    config = {"OPTIMIZER": optimizer_block(), "MODEL": {"NON_TRAINABLE_PARAMS": ["trunk.0.weigth"]}}
    error = build_error(config, EvalModel())
    assert error.path.endswith(".names[0]")
    assert "did you mean 'trunk.0.weight'" in str(error)


def test_non_trainable_params_must_be_a_list_of_names():
    config = {"OPTIMIZER": optimizer_block(), "MODEL": {"NON_TRAINABLE_PARAMS": "trunk.0.weight"}}
    error = build_error(config, EvalModel())
    assert error.path == "MODEL.NON_TRAINABLE_PARAMS"
