"""``paramwise_cfg`` as MMEngine's ``DefaultOptimWrapperConstructor`` reads it: the rule kind ``mmengine_paramwise``.

Per parameter (``f"{module_prefix}.{name}"``): the longest matching ``custom_keys`` key
(ties: alphabetical) decides alone: ``lr = lr * lr_mult``, ``weight_decay = weight_decay
* decay_mult`` (when the optimizer has a weight decay), then every key of the entry is
copied into the group (a ``weight_decay`` or ``momentum`` given there is used as is).
Otherwise, in MMEngine's order: biases (not of norm layers nor inside DCN) get
``bias_lr_mult``; offset convs inside DCN ``dcn_offset_lr_mult``; the decay is
``norm_decay_mult`` (norm layers), else ``bias_decay_mult`` (biases), else
``dwconv_decay_mult`` (depthwise convs), else ``flat_decay_mult`` (any other 1-d
parameter). Parameters without ``requires_grad`` are left out, as MMEngine skips them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from torch import nn

from optiplug.plugin import ConfigError, ParamInfo, RuleMatcher, RuleSpec, help_field, is_number

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)
DCN_TYPES = frozenset({"DeformConv2d", "ModulatedDeformConv2d"})
MULTIPLIERS = (
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "dwconv_decay_mult",
    "flat_decay_mult",
    "dcn_offset_lr_mult",
)


def _optional_multiplier(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not is_number(value) or isinstance(value, str) or value < 0):
        raise ConfigError(f"expected a number >= 0 or None, got {value!r}", attribute.name)


def _custom_keys(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for key, entry in value.items():
        if not isinstance(key, str):
            raise ConfigError(f"a custom key is a substring of parameter names, got {key!r}", "custom_keys")
        if not isinstance(entry, Mapping):
            raise ConfigError(f"expected a dict such as dict(lr_mult=0.1), got {entry!r}", f"custom_keys[{key!r}]")
        for option, number in entry.items():
            if not isinstance(option, str):
                raise ConfigError(f"an option name must be a string, got {option!r}", f"custom_keys[{key!r}]")
            if option in ("lr_mult", "decay_mult") and (not is_number(number) or isinstance(number, str)):
                raise ConfigError(f"expected a number, got {number!r}", f"custom_keys[{key!r}].{option}")


DEFAULT = "DefaultOptimWrapperConstructor"
LAYER_DECAY = "LearningRateDecayOptimWrapperConstructor"


def _constructor(value: Any) -> None:
    if value not in (DEFAULT, LAYER_DECAY):
        raise ConfigError(f"must be {DEFAULT} or {LAYER_DECAY}, got {value!r}", "constructor")


def _multiplier(help: str) -> Any:
    return help_field(help, default=None, validator=_optional_multiplier)


@attrs.frozen
class MMEngineParamwise:
    """``kind: mmengine_paramwise``: MMEngine's ``paramwise_cfg`` (DefaultOptimWrapperConstructor).

    ``has_weight_decay`` says whether the optimizer dict sets ``weight_decay`` (MMEngine's
    ``base_wd``): without it no decay multiplier applies.
    """

    bias_lr_mult: float | None = _multiplier("lr multiplier of biases (not of norm layers nor inside DCN).")
    bias_decay_mult: float | None = _multiplier("Weight-decay multiplier of biases (not of norm layers).")
    norm_decay_mult: float | None = _multiplier("Weight-decay multiplier of norm layers' weights and biases.")
    dwconv_decay_mult: float | None = _multiplier("Weight-decay multiplier of depthwise convolutions.")
    flat_decay_mult: float | None = _multiplier("Weight-decay multiplier of any other 1-d parameter.")
    dcn_offset_lr_mult: float | None = _multiplier("lr multiplier of the offset convs inside deformable convs.")
    custom_keys: dict[str, dict[str, Any]] = help_field(
        "Substring of the parameter's name -> options (lr_mult, decay_mult, or any group option); the longest "
        "matching key (ties: alphabetical) decides alone.",
        factory=dict,
        validator=_custom_keys,
    )
    bypass_duplicate: bool = help_field(
        "Accepted; a parameter shared by several modules is always put in the optimizer once.", default=False
    )
    has_weight_decay: bool = help_field("Whether the optimizer sets weight_decay (MMEngine's base_wd).", default=True)
    constructor: str = help_field(
        "DefaultOptimWrapperConstructor, or mmpretrain's LearningRateDecayOptimWrapperConstructor (layer-wise lr "
        "decay from the model's get_layer_depth(name); custom_keys give decay_mult and other options, no lr_mult).",
        default=DEFAULT,
        validator=lambda _i, _a, value: _constructor(value),
    )
    layer_decay_rate: float = help_field(
        "LearningRateDecayOptimWrapperConstructor: lr times rate ** (max_id - layer_id - 1).", default=1.0
    )


def _is_dcn(module: nn.Module | None) -> bool:
    return module is not None and any(base.__name__ in DCN_TYPES for base in type(module).__mro__)


def paramwise_matcher(config: MMEngineParamwise) -> RuleMatcher:
    """The options MMEngine's constructor gives each parameter, as multipliers and values."""
    keys = sorted(sorted(config.custom_keys), key=len, reverse=True)
    if config.constructor == LAYER_DECAY:
        return _layer_decay_matcher(config, keys)

    def match(info: ParamInfo) -> Mapping[str, Any] | bool | None:
        prefix = info.module_name
        name = info.leaf_name
        full_name = f"{prefix}.{name}"
        for key in keys:
            if key in full_name:
                return _custom(config, config.custom_keys[key]) or True
        root, module = info.root, info.module
        parent = _parent_module(root, prefix)
        return _type_rules(config, info, module, _is_dcn(parent)) or None

    return match


def _parent_module(root: nn.Module | None, prefix: str) -> nn.Module | None:
    if root is None or not prefix:
        return None
    parent = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    try:
        return root.get_submodule(parent)
    except AttributeError:
        return None


def _custom(config: MMEngineParamwise, entry: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "lr_mult":
            options["lr_mult"] = float(value)
        elif key == "decay_mult":
            if config.has_weight_decay:
                options["decay_mult"] = float(value)
        else:
            options[key] = value
    return {k: v for k, v in options.items() if not (k.endswith("_mult") and v == 1.0)}


def _type_rules(config: MMEngineParamwise, info: ParamInfo, module: nn.Module | None, in_dcn: bool) -> dict[str, Any]:
    is_bias = info.leaf_name == "bias"
    is_norm = isinstance(module, NORM_TYPES)
    is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
    options: dict[str, float] = {}
    if is_bias and not (is_norm or in_dcn) and config.bias_lr_mult is not None:
        options["lr_mult"] = config.bias_lr_mult
    if "conv_offset" in info.module_name and in_dcn and config.dcn_offset_lr_mult is not None:
        if isinstance(module, nn.Conv2d):
            options["lr_mult"] = config.dcn_offset_lr_mult
    if config.has_weight_decay:
        decay = None
        if is_norm and config.norm_decay_mult is not None:
            decay = config.norm_decay_mult
        elif is_bias and not in_dcn and config.bias_decay_mult is not None:
            decay = config.bias_decay_mult
        elif is_dwconv and config.dwconv_decay_mult is not None:
            decay = config.dwconv_decay_mult
        elif info.param.ndim == 1 and not in_dcn and config.flat_decay_mult is not None:
            decay = config.flat_decay_mult
        if decay is not None:
            options["decay_mult"] = decay
    return {k: v for k, v in options.items() if v != 1.0}


def _layer_decay_matcher(config: MMEngineParamwise, keys: list[str]) -> RuleMatcher:
    """Mmpretrain's LearningRateDecayOptimWrapperConstructor (mmpretrain 1.2.0's ``add_params``)."""

    def match(info: ParamInfo) -> Mapping[str, Any] | bool | None:
        depth = getattr(info.root, "get_layer_depth", None)
        if depth is None:
            raise ConfigError(
                f"{LAYER_DECAY} needs the model's get_layer_depth(param_name) method (mmpretrain's classifiers "
                f"and backbones have it); {type(info.root).__name__} has none",
                "constructor",
            )
        layer_id, max_id = depth(info.name)
        options: dict[str, Any] = {"lr_mult": config.layer_decay_rate ** (max_id - layer_id - 1)}
        if config.has_weight_decay:
            options.update(_layer_decay_wd(config, info, keys))
        return {k: v for k, v in options.items() if not (k.endswith("_mult") and v == 1.0)} or True

    return match


def _layer_decay_wd(config: MMEngineParamwise, info: ParamInfo, keys: list[str]) -> dict[str, Any]:
    key = next((k for k in keys if k in info.name), None)
    if key is not None:
        entry = dict(config.custom_keys[key])
        options: dict[str, Any] = {"decay_mult": float(entry.pop("decay_mult", 1.0))}
        # mmpretrain copies the other keys into the group, then sets the group's lr from the layer:
        # an lr or lr_mult given here has no effect.
        options.update({k: v for k, v in entry.items() if k not in ("lr", "lr_mult")})
        return options
    if isinstance(info.module, NORM_TYPES) and config.norm_decay_mult is not None:
        return {"decay_mult": config.norm_decay_mult}
    if info.leaf_name == "bias" and config.bias_decay_mult is not None:
        return {"decay_mult": config.bias_decay_mult}
    if info.param.ndim == 1 and config.flat_decay_mult is not None:
        return {"decay_mult": config.flat_decay_mult}
    return {}


def rule_specs() -> list[RuleSpec]:
    """The ``mmengine_paramwise`` rule kind."""
    return [
        RuleSpec(
            "mmengine_paramwise",
            MMEngineParamwise,
            paramwise_matcher,
            "MMEngine paramwise_cfg (DefaultOptimWrapperConstructor)",
        )
    ]
