"""Layer-wise lr decay: depths per convention (spec vissl 1.4), real group lrs, fewest groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(4)
        self.attn = nn.Linear(4, 4)


class ViTLike(nn.Module):
    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(2, 4))
        self.blocks = nn.ModuleList(Block() for _ in range(depth))
        self.norm = nn.LayerNorm(4)
        self.heads = nn.Linear(4, 2)


def lrs(built):
    return {n: built.optimizer.param_groups[g.index]["lr"] for g in built.groups for n in g.names}


def build(model, **rule):
    config = {"optimizer": {"name": "sgd", "lr": 1.0}, "rules": [{"kind": "layer_decay", **rule}]}
    return optiplug.build(config, model)


def test_vissl_vit_depths():
    # spec 1.4: 0 for patch_embed/pos_embed/cls_token, k+1 for blocks.k., L+1 for "heads", else L
    d = 0.5
    got = lrs(build(ViTLike(), decay=d))
    assert got["cls_token"] == d**4 and got["pos_embed"] == d**4 and got["patch_embed.weight"] == d**4
    assert got["blocks.0.attn.weight"] == d**3
    assert got["blocks.2.norm1.bias"] == d**1
    assert got["norm.weight"] == d**1
    assert got["heads.weight"] == 1.0


def test_timm_vit_puts_the_rest_with_the_head():
    got = lrs(build(ViTLike(), decay=0.5, preset="timm_vit"))
    assert got["norm.weight"] == 1.0 and got["heads.bias"] == 1.0
    assert got["blocks.0.attn.weight"] == 0.5**3


def test_fewest_groups_one_per_depth():
    built = build(ViTLike(depth=3), decay=0.5)
    assert len(built.optimizer.param_groups) == 5


def test_frozen_blocks_do_not_shift_the_depths():
    model = ViTLike()
    model.blocks[0].requires_grad_(False)
    model.blocks[2].requires_grad_(False)
    got = lrs(build(model, decay=0.5))
    assert got["blocks.1.attn.weight"] == 0.5**2
    assert "blocks.0.attn.weight" not in got


def test_vissl_resnet_stages():
    class Stage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

    model = nn.Module()
    model._feature_blocks = nn.Module()
    model._feature_blocks.conv1 = nn.Conv2d(1, 1, 1)
    for i in range(1, 5):
        setattr(model._feature_blocks, f"layer{i}", nn.Sequential(Stage()))
    model.head = nn.Linear(1, 1)
    got = lrs(build(model, decay=0.5, preset="vissl_resnet"))
    assert got["_feature_blocks.conv1.weight"] == 0.5**5
    assert got["_feature_blocks.layer1.0.conv.weight"] == 0.5**4
    assert got["_feature_blocks.layer4.0.conv.weight"] == 0.5**1
    assert got["head.weight"] == 1.0


def test_schedule_reaches_the_decayed_groups():
    model = ViTLike(depth=2)
    config = {
        "optimizer": {"name": "sgd", "lr": 1.0},
        "rules": [{"kind": "layer_decay", "decay": 0.5}],
        "schedules": {"lr": {"name": "linear", "start_value": 0.2, "end_value": 0.0}},
    }
    built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=1)
    assert sorted(g["lr"] for g in built.optimizer.param_groups) == pytest.approx([0.025, 0.05, 0.1, 0.2])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"decay": 1.5}, r"rules\[0\].decay: must be in \[0.0, 1.0\], got 1.5"),
        ({"decay": 0}, r"rules\[0\].decay: must be in \(0, 1\], got 0"),
        ({"decay": 0.5, "preset": "vit"}, r"rules\[0\].preset: must be one of 'vissl_vit', 'timm_vit'.*got 'vit'"),
        ({"decay": 0.5, "block": "blocks"}, r"rules\[0\].block: needs exactly one group"),
        ({"decay": 0.5, "preset": "mmselfsup_vit"}, r"rules\[0\].block: no parameter name matches the block pattern"),
    ],
)
def test_errors_name_the_rule(rule, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        build(ViTLike(), **rule)


def test_vissl_vit_checks_heads_before_the_stem():
    """VISSL tests ``"heads" in name`` before the patch_embed / pos_embed / cls_token names."""
    model = ViTLike(depth=2)
    model.heads = nn.Module()
    model.heads.pos_embed = nn.Parameter(torch.zeros(2))
    got = lrs(build(model, decay=0.5))
    assert got["heads.pos_embed"] == 1.0 and got["pos_embed"] == 0.5**3
