"""MMDetection 3.x's ``LearningRateDecayOptimizerConstructor``: the rule kind ``mmdet_layer_decay``.

The constructor of mmdet 3.3.0 (``mmdet/engine/optimizers/layer_decay_optimizer_constructor.py``),
used by its ConvNeXt detectors::

    optim_wrapper = dict(
        constructor='LearningRateDecayOptimizerConstructor',
        paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise', num_layers=6),
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))

Per trainable parameter of the model, by its name:

* the layer id: ``decay_type='layer_wise'`` (any type containing ``layer_wise``) numbers
  ConvNeXt's stem and stages (``get_layer_id_for_convnext(name, num_layers)``: the
  embeddings and the first downsample 0, stage 0 1, stage 1 and its downsample 2, stage 2
  ``3 + block // 3``, stage 3 ``num_layers``, anything outside the backbone ``num_layers +
  1``); ``'stage_wise'`` gives each stage one id (``get_stage_id_for_convnext(name,
  num_layers + 2)``: embeddings and downsamples 0, stage s ``s + 1``, the rest
  ``num_layers + 1``);
* its lr is the optimizer's times ``decay_rate ** (num_layers + 2 - id - 1)``;
* 1-d parameters, names ending in ``.bias`` and the names ``pos_embed`` and ``cls_token``
  get ``weight_decay=0``, every other one the optimizer's.

Only ``decay_rate``, ``decay_type`` and ``num_layers`` are read (mmdet's ``add_params``
reads nothing else), and only for a model whose ``backbone``'s class name contains
``ConvNeXt`` (mmdet raises NotImplementedError for any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from optiplug.plugin import ConfigError, ParamInfo, RuleMatcher, RuleSpec, help_field, is_number, one_of

CONSTRUCTOR = "LearningRateDecayOptimizerConstructor"
KEYS = ("decay_rate", "decay_type", "num_layers")
"""The paramwise_cfg keys the constructor reads."""
EMBEDDINGS = ("backbone.cls_token", "backbone.mask_token", "backbone.pos_embed")


def _decay_type(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or ("layer_wise" not in value and value != "stage_wise"):
        raise ConfigError(
            f"expected 'layer_wise' or 'stage_wise', got {value!r} (mmdet's constructor sets no layer id for it)",
            "decay_type",
        )


def _num_layers(_instance: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a whole number >= 1 (the backbone's layers), got {value!r}", "num_layers")


def _decay_rate(_instance: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool | str) or not is_number(value) or value <= 0:
        raise ConfigError(f"expected a number > 0 (the lr factor per layer), got {value!r}", "decay_rate")


@attrs.frozen
class MMDetLayerDecay:
    """``kind: mmdet_layer_decay``: MMDetection 3.x's LearningRateDecayOptimizerConstructor (ConvNeXt)."""

    num_layers: int = help_field("paramwise_cfg.num_layers: the backbone's layers.", validator=_num_layers)
    decay_rate: float = help_field(
        "paramwise_cfg.decay_rate: the lr factor per layer below the top.", validator=_decay_rate
    )
    decay_type: str = help_field(
        "layer_wise (any type containing it) or stage_wise.", default="layer_wise", validator=_decay_type
    )
    backbone: str = help_field(
        "auto: model.backbone's class must be a ConvNeXt, as mmdet checks; convnext: read the names as "
        "ConvNeXt's whatever the model.",
        default="auto",
        validator=one_of(("auto", "convnext")),
    )


def convnext_layer_id(name: str, max_layer_id: int) -> int:
    """The layer id of mmdet's ``get_layer_id_for_convnext``."""
    if name in EMBEDDINGS:
        return 0
    if name.startswith("backbone.downsample_layers"):
        return {0: 0, 1: 2, 2: 3}.get(int(name.split(".")[2]), max_layer_id)
    if name.startswith("backbone.stages"):
        stage, block = int(name.split(".")[2]), int(name.split(".")[3])
        return {0: 1, 1: 2, 2: 3 + block // 3}.get(stage, max_layer_id)
    return max_layer_id + 1


def convnext_stage_id(name: str, max_stage_id: int) -> int:
    """The stage id of mmdet's ``get_stage_id_for_convnext``."""
    if name in EMBEDDINGS or name.startswith("backbone.downsample_layers"):
        return 0
    if name.startswith("backbone.stages"):
        return int(name.split(".")[2]) + 1
    return max_stage_id - 1


def _check_backbone(info: ParamInfo) -> None:
    backbone = getattr(info.root, "backbone", None)
    if backbone is None:
        raise ConfigError(
            f"{CONSTRUCTOR} reads model.backbone (a ConvNeXt); {type(info.root).__name__} has no backbone",
            "constructor",
        )
    if "ConvNeXt" not in type(backbone).__name__:
        raise ConfigError(
            f"{CONSTRUCTOR} knows ConvNeXt backbones only (mmdet raises NotImplementedError), and "
            f"model.backbone is a {type(backbone).__name__}",
            "constructor",
        )


def mmdet_matcher(config: MMDetLayerDecay) -> RuleMatcher:
    """Each parameter's lr multiplier and weight decay, as mmdet's ``add_params`` sets them."""
    num_layers = config.num_layers + 2

    def match(info: ParamInfo) -> Mapping[str, Any]:
        if config.backbone == "auto":
            _check_backbone(info)
        name = info.name
        if "layer_wise" in config.decay_type:
            layer_id = convnext_layer_id(name, config.num_layers)
        else:
            layer_id = convnext_stage_id(name, num_layers)
        options: dict[str, Any] = {"lr_mult": config.decay_rate ** (num_layers - layer_id - 1)}
        if info.param.ndim == 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token"):
            options["weight_decay"] = 0.0
        return options

    return match


def read_paramwise(paramwise: Mapping[str, Any] | None, has_weight_decay: bool, path: str) -> dict[str, Any]:
    """The rule's fields from ``paramwise_cfg``; what mmdet would fail on, refused in the config's terms."""
    if paramwise is None:
        raise ConfigError(f"{CONSTRUCTOR} needs paramwise_cfg=dict(num_layers=..., decay_rate=...)", path)
    for key in ("num_layers", "decay_rate"):
        if key not in paramwise:
            raise ConfigError(
                f"{CONSTRUCTOR} needs paramwise_cfg.{key} (mmdet's add_params fails without it)", f"{path}.{key}"
            )
    if not has_weight_decay:
        raise ConfigError(
            f"{CONSTRUCTOR} gives the decayed parameters the optimizer's weight_decay, which is not set (mmdet's "
            "groups would get weight_decay=None, which the optimizer's step fails on): set "
            "optim_wrapper.optimizer.weight_decay",
            "optim_wrapper.optimizer",
        )
    return {key: paramwise[key] for key in KEYS if key in paramwise}


def rule_specs() -> list[RuleSpec]:
    """The ``mmdet_layer_decay`` rule kind."""
    return [
        RuleSpec(
            "mmdet_layer_decay",
            MMDetLayerDecay,
            mmdet_matcher,
            "MMDetection 3.x's LearningRateDecayOptimizerConstructor (ConvNeXt layer-wise / stage-wise lr decay)",
        )
    ]
