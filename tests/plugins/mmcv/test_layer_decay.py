"""Layer-decay constructors: MMSegmentation 0.x's and MMSelfSup 0.x's, on real-shaped parameter names.

The expected layer of every parameter is written out below, worked by hand from the
reference code (mmseg/core/optimizers/layer_decay_optimizer_constructor.py and
mmselfsup/core/optimizer/transformer_finetune_constructor.py); the lr and weight decay
then follow their formulas.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError

CONFIGS = Path(__file__).parent / "configs"


def _model(backbone_class: str, names: list[str], **backbone_attrs) -> nn.Module:
    """A model whose parameters have ``names`` (1-D where the name says so), its backbone of ``backbone_class``."""
    backbone = type(backbone_class, (nn.Module,), {})()
    root = nn.Module()
    root.backbone = backbone
    for key, value in backbone_attrs.items():
        setattr(backbone, key, value)
    for name in names:
        one_d = name.endswith(("bias", "gamma", "norm.weight", "ln1.weight", "norm1.weight", "_token", "pos_embed"))
        shape = (4,) if one_d else (4, 4)
        owner = root
        parts = name.split(".")
        for part, after in itertools.pairwise(parts):
            if not hasattr(owner, part):
                owner.add_module(part, nn.ModuleList() if after.isdigit() else nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(parts[-1], nn.Parameter(torch.zeros(shape)))
    return root


def _options(built: optiplug.Built, model: nn.Module) -> dict[str, tuple[float, float]]:
    """Each parameter's (lr, weight_decay) before any schedule: the constructor's values."""
    names = {id(p): n for n, p in model.named_parameters()}
    groups = built.optimizer.param_groups
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def _unscheduled(config, model: nn.Module, **figures) -> optiplug.Built:
    recipe = optiplug.to_recipe(config, **figures)
    return optiplug.build(attrs.evolve(recipe, schedules={}), model)


# ConvNeXt, stage_wise, num_layers=6 -> N = 8; stage id: embeddings / downsample 0, stages.s -> s + 1, else N - 1.
CONVNEXT_STAGE_IDS = {
    "backbone.downsample_layers.0.0.weight": 0,
    "backbone.downsample_layers.2.1.bias": 0,
    "backbone.stages.0.0.depthwise_conv.weight": 1,
    "backbone.stages.0.0.gamma": 1,
    "backbone.stages.2.4.pointwise_conv1.weight": 3,
    "backbone.stages.3.0.norm.weight": 4,
    "backbone.norm3.weight": 7,
    "decode_head.conv_seg.weight": 7,
}


def test_mmseg_convnext_stage_wise():
    model = _model("ConvNeXt", list(CONVNEXT_STAGE_IDS))
    built = _unscheduled(CONFIGS / "mmseg_convnext_stage_wise.py", model)
    assert built.recipe.loss_scale == optiplug.LossScaleConfig()  # Fp16OptimizerHook(loss_scale='dynamic')
    got = _options(built, model)
    for name, layer_id in CONVNEXT_STAGE_IDS.items():
        no_decay = name.endswith(("bias", "gamma", "weight")) and model.get_parameter(name).ndim == 1
        expected_lr = 0.9 ** (8 - layer_id - 1) * 0.0001
        assert got[name][0] == pytest.approx(expected_lr, rel=1e-15), name
        assert got[name][1] == (0.0 if no_decay else 0.05), name


# ConvNeXt, layer_wise, num_layers=12 (max id 12): downsample 0 -> 0, 1 -> 2, 2 -> 3, 3 -> 12;
# stages 0 -> 1, 1 -> 2, 2 -> 3 + block // 3, 3 -> 12; anything else 13.
CONVNEXT_LAYER_IDS = {
    "backbone.downsample_layers.0.0.weight": 0,
    "backbone.downsample_layers.1.1.weight": 2,
    "backbone.downsample_layers.2.1.weight": 3,
    "backbone.downsample_layers.3.1.weight": 12,
    "backbone.stages.0.2.pointwise_conv2.weight": 1,
    "backbone.stages.1.1.pointwise_conv2.weight": 2,
    "backbone.stages.2.7.pointwise_conv2.weight": 5,
    "backbone.stages.2.26.pointwise_conv2.weight": 11,
    "backbone.stages.3.2.pointwise_conv2.weight": 12,
    "decode_head.conv_seg.weight": 13,
}


def test_mmseg_convnext_layer_wise():
    model = _model("ConvNeXt", list(CONVNEXT_LAYER_IDS))
    config = dict(
        optimizer=dict(
            type="AdamW",
            lr=1e-4,
            weight_decay=0.05,
            constructor="LearningRateDecayOptimizerConstructor",
            paramwise_cfg=dict(decay_rate=0.8, decay_type="layer_wise", num_layers=12),
        )
    )
    got = _options(optiplug.build(config, model), model)
    for name, layer_id in CONVNEXT_LAYER_IDS.items():
        assert got[name] == (pytest.approx(0.8 ** (14 - layer_id - 1) * 1e-4, rel=1e-15), 0.05), name


# BEiT, LayerDecayOptimizerConstructor (layer_wise_vit), num_layers=2 -> N = 4:
# cls_token / patch_embed 0, layers.i -> i + 1, anything else N - 1 = 3.
BEIT_LAYER_IDS = {
    "backbone.cls_token": 0,
    "backbone.patch_embed.projection.weight": 0,
    "backbone.layers.0.gamma_1": 1,
    "backbone.layers.0.attn.qkv.weight": 1,
    "backbone.layers.1.ffn.layers.0.0.bias": 2,
    "backbone.ln1.weight": 3,
    "decode_head.conv_seg.weight": 3,
}


def test_mmseg_beit_layer_decay():
    model = _model("BEiT", list(BEIT_LAYER_IDS))
    with pytest.warns(DeprecationWarning) if False else _nothing():
        built = _unscheduled(CONFIGS / "mmseg_beit_layer_decay.py", model)
    got = _options(built, model)
    for name, layer_id in BEIT_LAYER_IDS.items():
        no_decay = model.get_parameter(name).ndim == 1 or name.endswith(".bias")
        assert got[name] == (pytest.approx(0.9 ** (4 - layer_id - 1) * 3e-5, rel=1e-15), 0.0 if no_decay else 0.05)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ViT, MMSelfSup: N = len(layers) + 1 = 3; scale[i] = 0.65 ** (3 - i); pos_embed, cls_token, patch_embed
# scale[0]; backbone.layers.i scale[i + 1]; the rest no lr_mult (the optimizer's lr). The user's regexes
# ('ln', 'bias', 'pos_embed', 'cls_token') give weight_decay 0.
VIT_SCALES = {
    "backbone.cls_token": (0.65**3, 0.0),
    "backbone.pos_embed": (0.65**3, 0.0),
    "backbone.patch_embed.projection.weight": (0.65**3, 0.05),
    "backbone.patch_embed.projection.bias": (0.65**3, 0.0),
    "backbone.layers.0.ln1.weight": (0.65**2, 0.0),
    "backbone.layers.0.attn.qkv.weight": (0.65**2, 0.05),
    "backbone.layers.1.ffn.layers.0.0.weight": (0.65**1, 0.05),
    "backbone.ln1.weight": (1.0, 0.0),
    "head.layers.head.weight": (1.0, 0.05),
}


def test_mmselfsup_vit_finetune():
    model = _model("VisionTransformer", list(VIT_SCALES))
    got = _options(_unscheduled(CONFIGS / "mmselfsup_vit_finetune.py", model, steps_per_epoch=4), model)
    for name, (scale, wd) in VIT_SCALES.items():
        assert got[name] == (pytest.approx(4e-3 * scale, rel=1e-15), wd), name


# Swin, MMSelfSup: depths (2, 2) -> N = 6; scale of layer k = 0.9 ** (N - 1 - k); patch_embed 0;
# stages.s.blocks.b -> sum(depths[:s]) + b + 1; stages.s.downsample.{reduction,norm} -> sum(depths[:s + 1]);
# else N - 1 (scale 1).
SWIN_LAYERS = {
    "backbone.patch_embed.projection.weight": (0, 0.05),
    "backbone.stages.0.blocks.0.norm1.weight": (1, 0.0),
    "backbone.stages.0.blocks.1.attn.w_msa.relative_position_bias_table": (2, 0.0),
    "backbone.stages.0.blocks.1.attn.w_msa.qkv.weight": (2, 0.05),
    "backbone.stages.0.downsample.reduction.weight": (2, 0.05),
    "backbone.stages.0.downsample.norm.weight": (2, 0.0),
    "backbone.stages.1.blocks.0.ffn.layers.0.0.weight": (3, 0.05),
    "backbone.stages.1.blocks.1.ffn.layers.0.0.bias": (4, 0.0),
    "backbone.norm3.weight": (5, 0.0),
    "head.fc.weight": (5, 0.05),
}


def test_mmselfsup_swin_finetune():
    model = _model("SwinTransformer", list(SWIN_LAYERS), depths=(2, 2))
    got = _options(_unscheduled(CONFIGS / "mmselfsup_swin_finetune.py", model, steps_per_epoch=4), model)
    for name, (layer, wd) in SWIN_LAYERS.items():
        assert got[name] == (pytest.approx(5e-3 * 0.9 ** (5 - layer), rel=1e-15), wd), name


def test_finetune_schedule_moves_each_group_from_its_own_lr(mmcv):
    model = _model("VisionTransformer", list(VIT_SCALES))
    built = optiplug.build(CONFIGS / "mmselfsup_vit_finetune.py", model, steps_per_epoch=4)
    first = {g["lr"] for g in built.optimizer.param_groups}
    built.scheduler.set_step(6)
    base = [
        g["lr"]
        for g in _unscheduled(CONFIGS / "mmselfsup_vit_finetune.py", model, steps_per_epoch=4).optimizer.param_groups
    ]
    later = [g["lr"] for g in built.optimizer.param_groups]
    assert first == {0.0}  # StepFixCosineAnnealing's linear warmup starts at 0
    # iteration 6 of 12, after a 1-epoch (4-iteration) warmup: the cosine over [4, 12] from each group's lr.
    assert later == pytest.approx([mmcv.annealing_cos(b, 1e-6, (6 - 4) / (12 - 4)) for b in base], rel=1e-12)


@pytest.mark.parametrize(
    ("optimizer", "model", "path", "words"),
    [
        (
            dict(
                type="AdamW",
                lr=1e-4,
                constructor="LearningRateDecayOptimizerConstructor",
                paramwise_cfg=dict(num_layers=2, decay_rate=0.9),
            ),
            _model("ResNet", ["backbone.conv1.weight"]),
            "optimizer.constructor",
            "not ResNet",
        ),
        (
            dict(type="AdamW", lr=1e-4, constructor="LayerDecayOptimizerConstructor", paramwise_cfg=dict(num_layers=2)),
            _model("BEiT", ["backbone.cls_token"]),
            "optimizer.paramwise_cfg",
            "needs layer_decay_rate",
        ),
        (
            dict(
                type="AdamW",
                lr=1e-4,
                constructor="TransformerFinetuneConstructor",
                model_type="convnext",
                layer_decay=0.9,
            ),
            _model("ConvNeXt", ["backbone.cls_token"]),
            "optimizer.model_type",
            "'vit' or 'swin'",
        ),
        (
            dict(
                type="AdamW", lr=1e-4, constructor="TransformerFinetuneConstructor", model_type="swin", layer_decay=0.9
            ),
            _model("SwinTransformer", ["backbone.cls_token"]),
            "optimizer.model_type",
            "model.backbone.depths",
        ),
        (
            dict(type="AdamW", lr=1e-4, constructor="MAEFtOptimizerConstructor"),
            _model("ViT", ["backbone.cls_token"]),
            "optimizer.constructor",
            "unknown constructor 'MAEFtOptimizerConstructor'",
        ),
    ],
)
def test_layer_decay_errors(optimizer, model, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=optimizer), model)
    assert caught.value.path.endswith(path), str(caught.value)  # matchers' errors come under rules[i]
    assert words in str(caught.value)
