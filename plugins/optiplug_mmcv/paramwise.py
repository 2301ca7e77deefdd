"""Per-parameter options the MMCV way: MMCV 1.x's ``paramwise_cfg`` and MMSelfSup's ``paramwise_options``.

* ``paramwise_cfg`` (``DefaultOptimizerConstructor`` of MMCV 1.x) is the rule kind
  ``mmcv_paramwise``: its matcher gives each parameter the ``lr_mult`` / ``decay_mult``
  MMCV would give it (custom keys first, then bias / norm / depthwise / DCN rules).
* ``paramwise_options`` (MMSelfSup 0.x) are translated into the core's ``regex`` rules,
  one per pattern, in order: every matching pattern applies, the last write wins,
  ``*_mult`` multiplies the optimizer's value, any other key is copied into the group.

Parameters with equal options share one group (MMCV builds one group per parameter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from torch import nn

from optiplug.plugin import (
    ConfigError,
    ParamInfo,
    RegistryView,
    RuleConfig,
    RuleMatcher,
    RuleSpec,
    help_field,
    is_number,
    non_negative,
    structure_config,
)

# MMCV's is_norm: _BatchNorm (SyncBatchNorm included), _InstanceNorm, GroupNorm, LayerNorm.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)
DCN_TYPES = frozenset({"DeformConv2d", "ModulatedDeformConv2d"})
PARAMWISE_CFG_KEYS = (
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "dwconv_decay_mult",
    "dcn_offset_lr_mult",
    "custom_keys",
    "bypass_duplicate",
    "flat_decay_mult",
)
DECAY_MULTS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult")


def _multiplier(help: str) -> Any:
    return help_field(help, default=1.0, validator=non_negative())


@attrs.frozen
class CustomKey:
    """One ``custom_keys`` entry: MMCV 1.x reads only these two keys."""

    lr_mult: float = _multiplier("The lr of matching parameters is the optimizer's lr times this.")
    decay_mult: float = _multiplier("Their weight decay is the optimizer's times this.")


@attrs.frozen
class ParamwiseCfg:
    """``kind: mmcv_paramwise``: MMCV 1.x's ``paramwise_cfg``.

    Per parameter: the longest custom key (then alphabetical) found in
    ``f"{module_name}.{name}"`` decides alone; otherwise biases (not of norm or DCN
    layers) get ``bias_lr_mult``, offset convs of DCN layers ``dcn_offset_lr_mult``, and
    the decay is ``norm_decay_mult`` (norm layers), else ``dwconv_decay_mult`` (depthwise
    convs, weight and bias), else ``bias_decay_mult`` (other biases).
    """

    bias_lr_mult: float = _multiplier("lr multiplier of biases (not of norm layers or DCN offset convs).")
    bias_decay_mult: float = _multiplier("Weight-decay multiplier of biases (not of norm layers or depthwise convs).")
    norm_decay_mult: float = _multiplier("Weight-decay multiplier of norm layers' weights and biases.")
    dwconv_decay_mult: float = _multiplier(
        "Weight-decay multiplier of depthwise convolutions (Conv2d with groups == in_channels)."
    )
    dcn_offset_lr_mult: float = _multiplier("lr multiplier of the offset convs inside deformable convolutions.")
    custom_keys: dict[str, CustomKey] = help_field(
        "Substring of the parameter's name -> {lr_mult, decay_mult}; the longest matching key wins alone.",
        factory=dict,
    )
    bypass_duplicate: bool = help_field(
        "Accepted for MMCV configs; a parameter shared by several modules is always put in the optimizer once.",
        default=False,
    )

    def is_empty(self) -> bool:
        """Whether the config changes nothing (every multiplier 1, no custom key)."""
        return attrs.evolve(self, bypass_duplicate=False) == ParamwiseCfg()


def _is_dcn(module: nn.Module | None) -> bool:
    return module is not None and any(base.__name__ in DCN_TYPES for base in type(module).__mro__)


def _parent(module_name: str) -> str | None:
    return module_name.rsplit(".", 1)[0] if "." in module_name else ("" if module_name else None)


def paramwise_matcher(config: ParamwiseCfg) -> RuleMatcher:
    """The options MMCV 1.x's constructor gives each parameter (multipliers of 1 left out)."""
    keys = sorted(sorted(config.custom_keys), key=len, reverse=True)
    dcn_modules: set[str] = set()

    def match(info: ParamInfo) -> Mapping[str, float] | bool | None:
        if _is_dcn(info.module):
            dcn_modules.add(info.module_name)
        full_name = f"{info.module_name}.{info.leaf_name}" if info.module is not None else f".{info.name}"
        for key in keys:
            if key in full_name:
                custom = config.custom_keys[key]
                return _without_ones({"lr_mult": custom.lr_mult, "decay_mult": custom.decay_mult}) or True
        in_dcn = _parent(info.module_name) in dcn_modules
        return _without_ones(_type_rules(config, info, in_dcn)) or None

    return match


def _type_rules(config: ParamwiseCfg, info: ParamInfo, in_dcn: bool) -> dict[str, float]:
    module, is_bias = info.module, info.leaf_name == "bias"
    is_norm = isinstance(module, NORM_TYPES)
    options: dict[str, float] = {}
    if is_bias and not (is_norm or in_dcn):
        options["lr_mult"] = config.bias_lr_mult
    if "conv_offset" in info.module_name and in_dcn and isinstance(module, nn.Conv2d):
        options["lr_mult"] = config.dcn_offset_lr_mult
    if is_norm:
        options["decay_mult"] = config.norm_decay_mult
    elif isinstance(module, nn.Conv2d) and module.in_channels == module.groups:
        options["decay_mult"] = config.dwconv_decay_mult
    elif is_bias and not in_dcn:
        options["decay_mult"] = config.bias_decay_mult
    return options


def _without_ones(options: Mapping[str, float]) -> dict[str, float]:
    # A multiplier of 1 gives the optimizer's value, which is what an untouched parameter gets.
    return {k: v for k, v in options.items() if v != 1.0}


def rule_specs() -> list[RuleSpec]:
    """The ``mmcv_paramwise`` rule kind, and the layer-decay constructors' (``optiplug_mmcv.layer_decay``)."""
    from optiplug_mmcv import layer_decay

    return [
        RuleSpec(
            "mmcv_paramwise", ParamwiseCfg, paramwise_matcher, "MMCV 1.x paramwise_cfg (DefaultOptimizerConstructor)"
        ),
        *layer_decay.rule_specs(),
    ]


def check_decay_base(config: ParamwiseCfg, optimizer: Mapping[str, Any], path: str) -> None:
    """MMCV's check: a decay multiplier needs ``weight_decay`` in the optimizer dict."""
    if optimizer.get("weight_decay") is not None:
        return
    given = [k for k in DECAY_MULTS if getattr(config, k) != 1.0]
    given += [f"custom_keys[{k!r}].decay_mult" for k, v in config.custom_keys.items() if v.decay_mult != 1.0]
    if given:
        raise ConfigError(f"{given[0]} needs optimizer.weight_decay, which is not set (MMCV raises ValueError)", path)


def paramwise_options_rules(
    options: Any, optimizer: Mapping[str, Any], registry: RegistryView, path: str
) -> list[RuleConfig]:
    """MMSelfSup's ``paramwise_options`` as ``regex`` rules, in the config's order."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        raise ConfigError(f"expected a dict of regex -> options, got {options!r}", path)
    return [
        _regex_rule(pattern, values, optimizer, registry, f"{path}[{pattern!r}]") for pattern, values in options.items()
    ]


def regex_rule(pattern: str, options: Mapping[str, Any], label: str, registry: RegistryView) -> RuleConfig:
    """The core's ``regex`` rule for ``pattern``, setting ``options`` (not checked here: build() checks them)."""
    rule = structure_config({"kind": "regex", "pattern": pattern}, RuleConfig, registry)
    return attrs.evolve(rule, set=dict(options), label=label)


def _regex_rule(
    pattern: Any, values: Any, optimizer: Mapping[str, Any], registry: RegistryView, path: str
) -> RuleConfig:
    if not isinstance(pattern, str):
        raise ConfigError(f"a pattern must be a string (a Python regex), got {pattern!r}", path)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc}", path) from None
    label = f"paramwise_options[{pattern!r}]"
    if pattern in PARAMWISE_CFG_KEYS:
        label += (
            f": {pattern!r} is a paramwise_cfg key, not a parameter name; MMSelfSup reads it as a regex, which "
            f"matches nothing. Use regexes here (e.g. '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0.)) "
            f"or optimizer=dict(..., paramwise_cfg=dict({pattern}=...))"
        )
        if not isinstance(values, Mapping):
            return regex_rule(pattern, {}, label, registry)
    if not isinstance(values, Mapping):
        raise ConfigError(f"expected a dict of options (weight_decay=0., lr_mult=10, ...), got {values!r}", path)
    for key, value in values.items():
        _check_option(key, value, optimizer, f"{path}.{key}")
    return regex_rule(pattern, values, label, registry)


def _check_option(key: Any, value: Any, optimizer: Mapping[str, Any], path: str) -> None:
    if not isinstance(key, str):
        raise ConfigError(f"an option name must be a string, got {key!r}", path)
    if not key.endswith("_mult"):
        return
    base = key[: -len("_mult")]
    if base not in optimizer:
        raise ConfigError(
            f"{key} multiplies the optimizer's {base!r}, which optimizer does not set (MMSelfSup asserts it); "
            f"set optimizer.{base}, or give {base} itself here",
            path,
        )
    number = optimizer[base]
    if not is_number(value) or not is_number(number):
        raise ConfigError(f"{key} and optimizer.{base} must be numbers, got {value!r} and {number!r}", path)
