r"""Layer-wise lr decay constructors of the MMCV 1.x generation, as rule kinds.

* ``mmseg_layer_decay``: MMSegmentation 0.x's ``LearningRateDecayOptimizerConstructor``
  (``paramwise_cfg=dict(num_layers=N, decay_rate=r, decay_type='layer_wise' |
  'stage_wise')``) and ``LayerDecayOptimizerConstructor`` (``layer_decay_rate=r``, read as
  ``decay_type='layer_wise_vit'``). Each parameter's layer id comes from its name and the
  class of ``model.backbone`` (ConvNeXt, or BEiT / MAE); its lr is
  ``lr * r ** (N + 2 - id - 1)``; 1-D parameters and biases get ``weight_decay=0``.
* ``mmselfsup_finetune``: MMSelfSup 0.x's ``TransformerFinetuneConstructor``
  (``optimizer=dict(..., model_type='vit' | 'swin', layer_decay=r, paramwise_options={...})``):
  the regexes of ``paramwise_options`` and, after them, one per layer (ViT: ``pos_embed``,
  ``cls_token``, ``patch_embed`` and ``backbone\\.layers\\.i\\.``; Swin: every parameter's
  name) with ``lr_mult`` ``r ** k``; every matching regex applies, the last write wins.

Both read the model (``ParamInfo.root``) as the reference does: ``model.backbone``'s class,
``len(model.backbone.layers)``, ``model.backbone.depths``. Their errors name the rule's own
fields (``backbone``, ``decay_type``, ``model_type``); the MMCV dialect's ``paths`` renames
them to the config's keys (``optimizer.constructor``, ``optimizer.paramwise_cfg.decay_type``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from torch import nn

from optiplug.plugin import ConfigError, ParamInfo, RuleMatcher, RuleSpec, help_field, one_of, positive

DECAY_TYPES = ("layer_wise", "stage_wise", "layer_wise_vit")
MODEL_TYPES = ("vit", "swin")
EMBEDDINGS = ("backbone.cls_token", "backbone.mask_token", "backbone.pos_embed")


@attrs.frozen
class MMSegLayerDecay:
    """``kind: mmseg_layer_decay``: MMSegmentation's LearningRateDecayOptimizerConstructor."""

    num_layers: int = help_field("The backbone's layers (paramwise_cfg.num_layers).", validator=positive())
    decay_rate: float = help_field("The lr factor per layer below the top (decay_rate).", validator=positive())
    decay_type: str = help_field(
        "layer_wise (ConvNeXt, BEiT, MAE), stage_wise (ConvNeXt) or layer_wise_vit.",
        default="layer_wise",
        validator=one_of(DECAY_TYPES),
    )
    weight_decay: float | None = help_field("The optimizer's weight_decay (base_wd).", default=None)
    backbone: str = help_field(
        "convnext or vit layer ids; auto: from the class of model.backbone, as MMSegmentation does.",
        default="auto",
        validator=one_of(("auto", "convnext", "vit")),
    )


def _backbone_kind(root: nn.Module | None) -> str:
    backbone = getattr(root, "backbone", None)
    name = type(backbone).__name__
    if backbone is None:
        raise ConfigError("the layer-decay constructor reads model.backbone; this model has none", "backbone")
    if "ConvNeXt" in name:
        return "convnext"
    if "BEiT" in name or "MAE" in name:
        return "vit"
    raise ConfigError(
        f"MMSegmentation's layer decay knows ConvNeXt, BEiT and MAE backbones, not {name} (it raises "
        "NotImplementedError)",
        "backbone",
    )


def convnext_layer_id(name: str, max_layer_id: int) -> int:
    """MMSegmentation's ``get_layer_id_for_convnext``."""
    if name in EMBEDDINGS:
        return 0
    if name.startswith("backbone.downsample_layers"):
        return {0: 0, 1: 2, 2: 3}.get(int(name.split(".")[2]), max_layer_id)
    if name.startswith("backbone.stages"):
        stage, block = int(name.split(".")[2]), int(name.split(".")[3])
        return {0: 1, 1: 2, 2: 3 + block // 3}.get(stage, max_layer_id)
    return max_layer_id + 1


def convnext_stage_id(name: str, max_stage_id: int) -> int:
    """MMSegmentation's ``get_stage_id_for_convnext``."""
    if name in EMBEDDINGS or name.startswith("backbone.downsample_layers"):
        return 0
    if name.startswith("backbone.stages"):
        return int(name.split(".")[2]) + 1
    return max_stage_id - 1


def vit_layer_id(name: str, max_layer_id: int) -> int:
    """MMSegmentation's ``get_layer_id_for_vit``."""
    if name in EMBEDDINGS or name.startswith("backbone.patch_embed"):
        return 0
    if name.startswith("backbone.layers"):
        return int(name.split(".")[2]) + 1
    return max_layer_id - 1


def mmseg_matcher(config: MMSegLayerDecay) -> RuleMatcher:
    """lr_mult (and weight_decay 0 for 1-D parameters and biases) of each parameter, as MMSegmentation sets them."""
    num_layers = config.num_layers + 2

    def match(info: ParamInfo) -> Mapping[str, Any]:
        kind = _backbone_kind(info.root) if config.backbone == "auto" else config.backbone
        if config.decay_type == "stage_wise":
            if kind != "convnext":
                raise ConfigError("stage_wise decay is for ConvNeXt backbones only", "decay_type")
            layer_id = convnext_stage_id(info.name, num_layers)
        elif kind == "convnext":
            layer_id = convnext_layer_id(info.name, config.num_layers)
        else:
            layer_id = vit_layer_id(info.name, num_layers)
        no_decay = info.param.ndim == 1 or info.name.endswith(".bias") or info.name in ("pos_embed", "cls_token")
        options: dict[str, Any] = {"lr_mult": config.decay_rate ** (num_layers - layer_id - 1)}
        if no_decay or config.weight_decay is not None:
            options["weight_decay"] = 0.0 if no_decay else config.weight_decay
        return options

    return match


@attrs.frozen
class MMSelfSupFinetune:
    """``kind: mmselfsup_finetune``: MMSelfSup's TransformerFinetuneConstructor."""

    layer_decay: float = help_field("The lr factor per layer below the top; 0: none.", default=0.0)
    model_type: str | None = help_field("vit or swin (needed when layer_decay > 0).", default=None)
    paramwise_options: dict[str, dict[str, Any]] = help_field(
        "The config's regex -> options, applied before the layer rules.", factory=dict
    )

    def __attrs_post_init__(self) -> None:
        if self.layer_decay > 0 and self.model_type not in MODEL_TYPES:
            raise ConfigError(
                f"layer-wise decay is for model_type 'vit' or 'swin' (MMSelfSup raises NotImplementedError), "
                f"got {self.model_type!r}",
                "model_type",
            )


def _backbone_part(root: nn.Module, part: str, model_type: str) -> Any:
    value = getattr(getattr(root, "backbone", None), part, None)
    if value is None:
        raise ConfigError(
            f"layer-wise decay for model_type={model_type!r} reads model.backbone.{part}, which this model lacks",
            "model_type",
        )
    return value


def vit_options(config: MMSelfSupFinetune, root: nn.Module) -> dict[str, dict[str, Any]]:
    """MMSelfSup's ``_generate_vit_layer_wise_lr_decay``: the regexes in their order."""
    options = {key: dict(value) for key, value in config.paramwise_options.items()}
    num_layers = len(_backbone_part(root, "layers", "vit")) + 1
    scales = [config.layer_decay ** (num_layers - i) for i in range(num_layers + 1)]
    for key in ("pos_embed", "cls_token", "patch_embed"):
        options.setdefault(key, {}).update(lr_mult=scales[0])
    for i in range(num_layers - 1):
        options[f"backbone\\.layers\\.{i}\\."] = {"lr_mult": scales[i + 1]}
    return options


def swin_layer_id(name: str, num_layers: int, depths: list[int]) -> int:
    """MMSelfSup's ``_get_swin_layer``."""
    if "mask_token" in name or "patch_embed" in name:
        return 0
    if name.startswith("backbone.stages"):
        stage, block = int(name.split(".")[2]), name.split(".")[4]
        if block in ("reduction", "norm"):
            return sum(depths[: stage + 1])
        return sum(depths[:stage]) + int(block) + 1
    return num_layers - 1


def swin_options(config: MMSelfSupFinetune, root: nn.Module) -> dict[str, dict[str, Any]]:
    """MMSelfSup's ``_generate_swin_layer_wise_lr_decay``: each parameter's name as a regex."""
    options = {key: dict(value) for key, value in config.paramwise_options.items()}
    depths = list(_backbone_part(root, "depths", "swin"))
    num_layers = sum(depths) + 2
    scales = [config.layer_decay**i for i in reversed(range(num_layers))]
    for name, _ in root.named_parameters():
        options[name] = {"lr_mult": scales[swin_layer_id(name, num_layers, depths)]}
    return options


def finetune_matcher(config: MMSelfSupFinetune) -> RuleMatcher:
    """The options every matching regex writes, in order (the last write of an option wins)."""
    cache: dict[int, list[tuple[re.Pattern[str], dict[str, Any]]]] = {}

    def regexes(root: nn.Module | None) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
        if id(root) not in cache:
            if config.layer_decay > 0 and root is None:
                raise ConfigError("layer-wise decay reads the model: pass the model to build()", "layer_decay")
            options = dict(config.paramwise_options)
            if config.layer_decay > 0:
                options = (vit_options if config.model_type == "vit" else swin_options)(config, root)  # type: ignore[arg-type]
            cache[id(root)] = [(re.compile(key), value) for key, value in options.items()]
        return cache[id(root)]

    def match(info: ParamInfo) -> Mapping[str, Any] | None:
        written: dict[str, tuple[str, Any]] = {}
        for pattern, values in regexes(info.root):
            if pattern.search(info.name):
                for key, value in values.items():
                    written[key.removesuffix("_mult")] = (key, value)
        return {key: value for key, value in written.values()} or None

    return match


def rule_specs() -> list[RuleSpec]:
    """The two layer-decay rule kinds."""
    return [
        RuleSpec(
            "mmseg_layer_decay",
            MMSegLayerDecay,
            mmseg_matcher,
            "MMSegmentation 0.x LearningRateDecayOptimizerConstructor / LayerDecayOptimizerConstructor",
        ),
        RuleSpec(
            "mmselfsup_finetune", MMSelfSupFinetune, finetune_matcher, "MMSelfSup 0.x TransformerFinetuneConstructor"
        ),
    ]
