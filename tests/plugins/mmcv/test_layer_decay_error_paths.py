"""Errors of the MMCV layer-decay constructors name the keys the user wrote, never the translated ``rules[0]``.

An MMCV config's layer-decay constructor becomes one rule of the canonical recipe
(``rules[0]``); its matcher reads the model at build time and names the rule's own
fields (``backbone``, ``decay_type``, ``model_type``). The MMCV dialect's ``paths``
renames those to the config's keys (``optimizer.constructor``,
``optimizer.paramwise_cfg.decay_type``, ...), as it renames ``schedules.lr`` to
``lr_config``; a canonical recipe's user, who wrote the rule, still reads ``rules[0]``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError
from optiplug.cli import main


def _model(backbone_class: str | None, names: list[str]) -> nn.Module:
    """A model with parameters named ``names``, its ``backbone`` of class ``backbone_class`` (None: no backbone)."""
    root = nn.Module()
    if backbone_class is not None:
        root.backbone = type(backbone_class, (nn.Module,), {})()
    for name in names:
        owner = root
        parts = name.split(".")
        for part, after in itertools.pairwise(parts):
            if not hasattr(owner, part):
                owner.add_module(part, nn.ModuleList() if after.isdigit() else nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(parts[-1], nn.Parameter(torch.zeros(4, 4)))
    return root


def mmseg(constructor: str = "LearningRateDecayOptimizerConstructor", **paramwise_cfg) -> dict:
    return dict(type="AdamW", lr=1e-4, weight_decay=0.05, constructor=constructor, paramwise_cfg=paramwise_cfg)


CONVNEXT = _model("ConvNeXt", ["backbone.stages.0.0.weight", "decode_head.conv_seg.weight"])
CASES = [
    pytest.param(
        mmseg(num_layers=0, decay_rate=0.9),
        CONVNEXT,
        "optimizer.paramwise_cfg.num_layers: must be > 0, got 0",
        id="num_layers=0",
    ),
    pytest.param(
        mmseg(num_layers=6, decay_rate=-1),
        CONVNEXT,
        "optimizer.paramwise_cfg.decay_rate: must be > 0, got -1.0",
        id="decay_rate=-1",
    ),
    pytest.param(
        mmseg("LayerDecayOptimizerConstructor", num_layers=6, layer_decay_rate=-1),
        _model("BEiT", ["backbone.layers.0.weight"]),
        "optimizer.paramwise_cfg.layer_decay_rate: must be > 0, got -1.0",
        id="layer_decay_rate=-1",
    ),
    pytest.param(
        mmseg(num_layers=6, decay_rate=0.9),
        _model("ResNet", ["backbone.conv1.weight"]),
        "optimizer.constructor: MMSegmentation's layer decay knows ConvNeXt, BEiT and MAE backbones, not ResNet "
        "(it raises NotImplementedError)",
        id="ResNet backbone",
    ),
    pytest.param(
        mmseg(num_layers=6, decay_rate=0.9),
        _model(None, ["conv1.weight"]),
        "optimizer.constructor: the layer-decay constructor reads model.backbone; this model has none",
        id="no backbone",
    ),
    pytest.param(
        mmseg(num_layers=6, decay_rate=0.9, decay_type="stage_wise"),
        _model("BEiT", ["backbone.layers.0.weight"]),
        "optimizer.paramwise_cfg.decay_type: stage_wise decay is for ConvNeXt backbones only",
        id="stage_wise on BEiT",
    ),
    pytest.param(
        dict(type="AdamW", lr=1e-4, constructor="TransformerFinetuneConstructor", model_type="vit", layer_decay=0.65),
        _model("VisionTransformer", ["backbone.cls_token"]),
        "optimizer.model_type: layer-wise decay for model_type='vit' reads model.backbone.layers, which this model "
        "lacks",
        id="finetune vit without layers",
    ),
]


@pytest.mark.parametrize(("optimizer", "model", "message"), CASES)
def test_build_names_the_mmcv_key(optimizer, model, message):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=optimizer), model)
    assert str(caught.value) == message


def test_a_canonical_recipe_names_its_own_rule():
    """The same matcher error in a canonical recipe: the user wrote the rule, so the path is the rule's field."""
    recipe = {
        "optimizer": {"name": "adamw", "lr": 1e-4},
        "rules": [{"kind": "mmseg_layer_decay", "num_layers": 6, "decay_rate": 0.9}],
    }
    with pytest.raises(ConfigError) as caught:
        optiplug.build(recipe, _model("ResNet", ["backbone.conv1.weight"]))
    assert caught.value.path == "rules[0].backbone"
    assert "not ResNet" in str(caught.value)


def test_a_default_constructor_rule_is_not_renamed():
    """``rules[0]`` of an MMCV config without a layer-decay constructor is a paramwise rule: its paths are not these."""
    optimizer = dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.1)}))
    built = optiplug.build(dict(optimizer=optimizer), _model(None, ["head.weight", "conv1.weight"]))
    assert sorted(g["lr"] for g in built.optimizer.param_groups) == pytest.approx([0.01, 0.1])


CLI_CASES = [
    pytest.param(
        "paramwise_cfg=dict(num_layers=0, decay_rate=0.9)",
        "optimizer.paramwise_cfg.num_layers: must be > 0, got 0",
        id="num_layers=0",
    ),
    pytest.param(
        "paramwise_cfg=dict(num_layers=6, decay_rate=-1)",
        "optimizer.paramwise_cfg.decay_rate: must be > 0, got -1.0",
        id="decay_rate=-1",
    ),
    pytest.param(
        "paramwise_cfg=dict(num_layers=6, decay_rate=0.9)",  # valid, but the example model has no backbone
        "optimizer.constructor: the layer-decay constructor reads model.backbone; this model has none",
        id="example model without backbone",
    ),
]


@pytest.mark.parametrize(("paramwise_cfg", "message"), CLI_CASES)
def test_check_on_the_command_line_names_the_mmcv_key(tmp_path, capsys, paramwise_cfg, message):
    config = tmp_path / "upernet_convnext.py"
    config.write_text(
        "optimizer = dict(\n"
        "    type='AdamW', lr=0.0001, weight_decay=0.05,\n"
        f"    constructor='LearningRateDecayOptimizerConstructor', {paramwise_cfg})\n"
    )
    assert main(["check", str(config)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == [f"optiplug: error: {message}"], captured.err
