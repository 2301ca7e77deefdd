"""mmdet 3.x's LearningRateDecayOptimizerConstructor: the ``mmdet_layer_decay`` rule kind against mmdet's own code.

The reference is mmdet 3.3.0's constructor source (mmdet_layer_decay_reference.py, its
registry decorator removed) run by MMEngine's ``build_optim_wrapper`` on a ConvNeXt-named
model; a hand-computed table checks the formula independently.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import pytest
import torch
from mmdet_layer_decay_reference import LearningRateDecayOptimizerConstructor
from test_values import L, assert_same_traces
from torch import nn

import optiplug
from optiplug import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class ConvNeXt(nn.Module):
    """The parameter names of mmdet's ConvNeXt backbone (downsample_layers, stages, blocks), 4 blocks in stage 2."""

    def __init__(self, depths: tuple[int, ...] = (1, 1, 4, 1)) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2, 2, 1), nn.LayerNorm(2)) for _ in range(len(depths))
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Linear(2, 2)) for _ in range(d)))
            for d in depths
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, 2, 2))
        self.norm3 = nn.LayerNorm(2)


class Detector(nn.Module):
    def __init__(self, backbone: nn.Module | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = backbone or ConvNeXt()
        self.neck = nn.Conv2d(2, 2, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 2))  # top-level: no decay by its name
        self.head = nn.Linear(2, 3)


@pytest.fixture(scope="module", autouse=True)
def mmdet_constructor() -> Any:
    """mmdet's class registered with MMEngine's registry, as mmdet's import registers it."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    OPTIM_WRAPPER_CONSTRUCTORS.register_module(module=LearningRateDecayOptimizerConstructor, force=True)
    return LearningRateDecayOptimizerConstructor


def config(decay_type: str = "layer_wise", num_layers: int = 6, **optimizer: Any) -> dict[str, Any]:
    return {
        "optim_wrapper": {
            "constructor": "LearningRateDecayOptimizerConstructor",
            "paramwise_cfg": {"decay_rate": 0.8, "decay_type": decay_type, "num_layers": num_layers},
            "optimizer": {"type": "AdamW", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.05, **optimizer},
        },
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.01, "by_epoch": False, "begin": 0, "end": 6},
            {"type": "CosineAnnealingLR", "eta_min": 1e-6, "by_epoch": True, "begin": 0, "T_max": 3},
        ],
        "train_cfg": {"type": "EpochBasedTrainLoop", "max_epochs": 3},
    }


@pytest.mark.parametrize("decay_type", ["layer_wise", "stage_wise"])
@pytest.mark.parametrize("option", ["lr", "weight_decay", "betas"])
def test_matches_mmdets_constructor(decay_type: str, option: str) -> None:
    assert_same_traces(config(decay_type), option, model=Detector())


def test_sgd_and_a_type_containing_layer_wise_match_mmdet() -> None:
    cfg = config("layer_wise_vit", num_layers=12)
    cfg["optim_wrapper"]["optimizer"] = {"type": "SGD", "lr": 0.02, "momentum": 0.9, "weight_decay": 1e-4}
    for option in ("lr", "weight_decay", "momentum"):
        assert_same_traces(cfg, option, model=Detector(ConvNeXt((2, 2, 7, 2))))


def test_the_table_by_hand() -> None:
    """num_layers=6: ids 0..7 of 8 = 6 + 2 slots, lr * 0.8 ** (8 - id - 1); no decay for 1-d, biases, cls_token."""
    model = Detector()
    cfg = config()
    del cfg["param_scheduler"]
    built = optiplug.build(cfg, model, steps_per_epoch=L)
    got = {}
    for group in built.optimizer.param_groups:
        for p in group["params"]:
            got[next(n for n, q in model.named_parameters() if q is p)] = (group["lr"], group["weight_decay"])
    ids = {
        "backbone.pos_embed": 0,  # an embedding: 0
        "backbone.downsample_layers.0.0.weight": 0,
        "backbone.downsample_layers.1.0.weight": 2,
        "backbone.downsample_layers.2.0.weight": 3,
        "backbone.downsample_layers.3.0.weight": 6,  # num_layers
        "backbone.stages.0.0.0.weight": 1,
        "backbone.stages.1.0.1.weight": 2,
        "backbone.stages.2.2.1.weight": 3,  # 3 + block // 3
        "backbone.stages.2.3.1.weight": 4,
        "backbone.stages.3.0.1.weight": 6,
        "backbone.norm3.weight": 7,  # anything else: num_layers + 1
        "neck.weight": 7,
        "cls_token": 7,
    }
    for name, layer_id in ids.items():
        lr, wd = got[name]
        assert math.isclose(lr, 1e-3 * 0.8 ** (8 - layer_id - 1), rel_tol=1e-15), name
        assert wd == (0.0 if name in ("cls_token", "backbone.norm3.weight") else 0.05), name
    assert got["backbone.stages.2.3.1.bias"] == (got["backbone.stages.2.3.1.weight"][0], 0.0)
    assert len(got) == sum(1 for _ in model.parameters())


def test_from_a_py_file(tmp_path: Any) -> None:
    path = tmp_path / "rtmdet_convnext.py"
    path.write_text(
        "base_lr = 0.004\n"
        "optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),\n"
        "    constructor='LearningRateDecayOptimizerConstructor',\n"
        "    paramwise_cfg={'decay_rate': 0.8, 'decay_type': 'layer_wise', 'num_layers': 12})\n"
        "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)\n"
    )
    model = Detector()
    built = optiplug.build(path, model, steps_per_epoch=L)
    lrs = sorted({g["lr"] for g in built.optimizer.param_groups})
    assert lrs[-1] == pytest.approx(0.004)
    recipe = optiplug.to_recipe(path, steps_per_epoch=L)
    assert [r.kind for r in recipe.rules] == ["mmdet_layer_decay"]
    assert recipe.rules[0].params.num_layers == 12


def build(cfg: dict[str, Any], model: nn.Module | None = None) -> optiplug.Built:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optiplug.build(cfg, model or Detector(), steps_per_epoch=L)


def edited(edit: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(config())
    for key, value in edit.items():
        cfg["optim_wrapper"][key] = value
    return cfg


@pytest.mark.parametrize(
    ("edit", "path", "words"),
    [
        ({"paramwise_cfg": {"decay_rate": 0.9}}, "optim_wrapper.paramwise_cfg.num_layers", "needs"),
        ({"paramwise_cfg": {"num_layers": 6}}, "optim_wrapper.paramwise_cfg.decay_rate", "needs"),
        ({"paramwise_cfg": None}, "optim_wrapper.paramwise_cfg", "num_layers"),
        (
            {"paramwise_cfg": {"num_layers": 6, "decay_rate": 0.9, "decay_type": "block_wise"}},
            "optim_wrapper.paramwise_cfg.decay_type",
            "stage_wise",
        ),
        ({"paramwise_cfg": {"num_layers": 0, "decay_rate": 0.9}}, "optim_wrapper.paramwise_cfg.num_layers", ">= 1"),
        ({"paramwise_cfg": {"num_layers": 6, "decay_rate": -1}}, "optim_wrapper.paramwise_cfg.decay_rate", "> 0"),
        ({"optimizer": {"type": "AdamW", "lr": 1e-3}}, "optim_wrapper.optimizer", "weight_decay"),
        ({"constructor": "LearningRateDecayOptimizerConstructer"}, "optim_wrapper.constructor", "did you mean"),
    ],
)
def test_errors_name_the_config_key(edit: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        build(edited(edit))
    assert info.value.path == path


def test_a_backbone_that_is_not_convnext_is_refused_as_mmdet_refuses_it() -> None:
    class SwinTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Linear(2, 2)

    with pytest.raises(ConfigError, match="ConvNeXt backbones only.*SwinTransformer"):
        build(config(), Detector(SwinTransformer()))
    with pytest.raises(ConfigError, match="has no backbone"):
        build(config(), nn.Linear(2, 2))


def test_keys_mmdet_does_not_read_are_warned_and_ignored() -> None:
    cfg = config()
    cfg["optim_wrapper"]["paramwise_cfg"]["norm_decay_mult"] = 0.0
    with pytest.warns(optiplug.OptiplugWarning, match="mmdet's LearningRateDecayOptimizerConstructor ignores it"):
        optiplug.build(cfg, Detector(), steps_per_epoch=L)
    assert_same_traces(cfg, "weight_decay", model=Detector())


def test_deepspeed_optim_wrapper_is_refused_with_the_reason() -> None:
    cfg = config()
    cfg["optim_wrapper"] = {"type": "DeepSpeedOptimWrapper", "optimizer": {"type": "AdamW", "lr": 1e-3}}
    with pytest.raises(ConfigError, match="DeepSpeed builds its optimizer inside its engine") as info:
        build(cfg)
    assert info.value.path == "optim_wrapper.type"


def test_a_canonical_recipe_reads_the_names_as_convnexts_on_any_backbone() -> None:
    class Swin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stages = nn.ModuleList(nn.Linear(2, 2) for _ in range(4))

    rule = {"kind": "mmdet_layer_decay", "num_layers": 6, "decay_rate": 0.5, "decay_type": "stage_wise"}
    recipe = {"optimizer": {"name": "SGD", "lr": 1.0, "weight_decay": 0.1}, "rules": [rule]}
    with pytest.raises(ConfigError, match="ConvNeXt backbones only"):
        optiplug.build(recipe, Detector(Swin()), num_epochs=1, steps_per_epoch=1)
    model = Detector(Swin())
    built = optiplug.build(
        {**recipe, "rules": [{**rule, "backbone": "convnext"}]}, model, num_epochs=1, steps_per_epoch=1
    )
    names = {id(p): n for n, p in model.named_parameters()}
    lr = {names[id(p)]: g["lr"] for g in built.optimizer.param_groups for p in g["params"]}
    # stage s: id s + 1 of 8 slots -> 0.5 ** (8 - s - 2); outside the backbone: id 7 -> 1
    assert [lr[f"backbone.stages.{s}.weight"] for s in range(4)] == [0.5**6, 0.5**5, 0.5**4, 0.5**3]
    assert lr["head.weight"] == 1.0
