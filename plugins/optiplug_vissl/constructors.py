"""``param_group_constructor`` -> the rules of the canonical recipe.

=====================  ===========================================================
VISSL constructor      rules
=====================  ===========================================================
default                ``vissl_groups`` (weight decay by place), ``vissl_head`` for
                       ``lr_head`` / ``weight_decay_head`` when they differ; none with
                       ``construct_single_param_group_only``
dino                   ``vissl_groups`` (biases and ``norm`` names undecayed)
lr_decay               ``vissl_groups`` (lr_decay's weight decay by name) and ``layer_decay``
                       (``lr_mult = decay ** (L + 1 - depth)``)
linear_eval_heads      ``vissl_linear_eval_heads`` (per-head lr multiplier and decay)
=====================  ===========================================================

``MODEL.NON_TRAINABLE_PARAMS`` adds ``vissl_frozen`` last, whatever the constructor.
Only ``default`` reads ``head_optimizer_params``, ``weight_decay_head``,
``non_regularized_parameters`` and ``construct_single_param_group_only``; only
``linear_eval_heads`` reads ``OPTIMIZER.linear_eval_heads``, and it never reads a
scheduled ``weight_decay``. Setting what the chosen constructor ignores is a ConfigError
(VISSL would silently ignore it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from optiplug import ConfigError, RuleConfig, ScheduleConfig
from optiplug.plugin import RegistryView, join_path, structure_config
from optiplug_vissl.config_readers import flag, known_keys, number, section
from optiplug_vissl.groups import VisslGroupsRule, VisslHeadRule
from optiplug_vissl.heads import EvalHead, FrozenRule, LinearEvalHeadsRule
from optiplug_vissl.model import VIT, ModelKeys, lr_decay_trunk
from optiplug_vissl.schedules import VisslSchedule

CONSTRUCTORS = ("default", "dino", "lr_decay", "linear_eval_heads")
RESNET_LAYERS = 4  # VISSL's lr_decay fixes L = 4 for a ResNet
RESNET_STEM = [r"_feature_blocks\.conv1", r"_feature_blocks\.bn1"]  # VISSL's substrings, as regexes
EVAL_HEAD_KEYS = ("lr", "weight_decay", "regularize_bn")


@attrs.frozen
class GroupInputs:
    """What the constructors read: the merged and the written OPTIMIZER block, schedules, MODEL keys."""

    block: Mapping[str, Any]
    user: Mapping[str, Any]
    path: str
    schedules: Mapping[str, VisslSchedule]
    registry: RegistryView
    model: ModelKeys

    def at(self, *parts: str | int) -> str:
        """The VISSL path of a key of the OPTIMIZER block."""
        return join_path(self.path, *parts)

    @property
    def constructor(self) -> str:
        """VISSL's ``param_group_constructor``."""
        return str(self.block["param_group_constructor"])

    def regularization(self) -> dict[str, Any]:
        """The regularization options every vissl_groups rule carries."""
        return {
            "regularize_bn": flag(self.block["regularize_bn"], self.at("regularize_bn")),
            "regularize_bias": flag(self.block["regularize_bias"], self.at("regularize_bias")),
            "non_regularized_parameters": list(self.block["non_regularized_parameters"]),
        }

    def weight_decay(self) -> float:
        """``OPTIMIZER.weight_decay``."""
        return number(self.block["weight_decay"], self.at("weight_decay"), low=0.0)

    def main_decay(self) -> float | None:
        """The main weight decay, None when ``param_schedulers.weight_decay`` schedules it."""
        return None if "weight_decay" in self.schedules else self.weight_decay()


def check_constructor(inputs: GroupInputs) -> None:
    """Refuse what the chosen constructor would silently ignore."""
    constructor, block = inputs.constructor, inputs.block
    ignored = f"VISSL's {constructor!r} param_group_constructor never reads it"
    if constructor != "default":
        head, head_path = block["head_optimizer_params"], inputs.at("head_optimizer_params")
        written = {
            "construct_single_param_group_only": bool(block["construct_single_param_group_only"]),
            "non_regularized_parameters": bool(block["non_regularized_parameters"]),
            "head_optimizer_params.use_different_lr": flag(head["use_different_lr"], f"{head_path}.use_different_lr"),
            "head_optimizer_params.use_different_wd": flag(head["use_different_wd"], f"{head_path}.use_different_wd"),
            "param_schedulers.weight_decay_head": "weight_decay_head" in inputs.schedules,
        }
        for key, is_set in written.items():
            if is_set:
                raise ConfigError(f"{ignored} (only the default constructor does); remove it", inputs.at(key))
    if constructor == "linear_eval_heads" and "weight_decay" in inputs.schedules:
        raise ConfigError(
            f"{ignored}: each head's weight decay is its linear_eval_heads entry's, else OPTIMIZER.weight_decay",
            inputs.at("param_schedulers", "weight_decay"),
        )
    if constructor != "linear_eval_heads" and "linear_eval_heads" in inputs.user:
        raise ConfigError(
            f"{ignored}; it is read by param_group_constructor: linear_eval_heads", inputs.at("linear_eval_heads")
        )


def constructor_rules(inputs: GroupInputs) -> list[RuleConfig]:
    """The rules of VISSL's param-group constructor, then the frozen parameters' rule."""
    builders: dict[str, Callable[[GroupInputs], list[RuleConfig]]] = {
        "default": _default,
        "dino": _dino,
        "lr_decay": _lr_decay,
        "linear_eval_heads": _linear_eval_heads,
    }
    rules = builders[inputs.constructor](inputs)
    if inputs.model.non_trainable:
        frozen = FrozenRule(list(inputs.model.non_trainable))
        rules.append(RuleConfig("vissl_frozen", frozen, label="vissl MODEL.NON_TRAINABLE_PARAMS (frozen)"))
    return rules


def _head_decay(inputs: GroupInputs) -> float:
    head, path = inputs.block["head_optimizer_params"], inputs.at("head_optimizer_params")
    decay = number(head["weight_decay"], join_path(path, "weight_decay"), low=0.0)
    different = flag(head["use_different_wd"], join_path(path, "use_different_wd"))
    return decay if different else inputs.weight_decay()


def _default(inputs: GroupInputs) -> list[RuleConfig]:
    head_decay = _head_decay(inputs)
    if inputs.block["construct_single_param_group_only"]:
        return []
    regularization = inputs.regularization()
    scheduled_head = "weight_decay_head" in inputs.schedules
    groups = VisslGroupsRule(
        **regularization,
        weight_decay=inputs.main_decay(),
        head_weight_decay=None if scheduled_head else head_decay,
    )
    rules = [RuleConfig("vissl_groups", groups, label="vissl default constructor")]
    if "lr_head" in inputs.schedules:
        rules.append(_head_rule(regularization, False, "lr", inputs.schedules["lr_head"].config))
    if scheduled_head:
        rules.append(_head_rule(regularization, True, "weight_decay", inputs.schedules["weight_decay_head"].config))
    return rules


def _head_rule(
    regularization: dict[str, Any], regularized_only: bool, option: str, config: ScheduleConfig
) -> RuleConfig:
    head = VisslHeadRule(**regularization, regularized_only=regularized_only)
    label = f"vissl head ({'weight_decay_head' if option == 'weight_decay' else 'lr_head'})"
    return RuleConfig("vissl_head", head, schedules={option: config}, label=label)


def _dino(inputs: GroupInputs) -> list[RuleConfig]:
    groups = VisslGroupsRule(**inputs.regularization(), constructor="dino", weight_decay=inputs.main_decay())
    return [RuleConfig("vissl_groups", groups, label="vissl dino constructor")]


def _lr_decay(inputs: GroupInputs) -> list[RuleConfig]:
    trunk = lr_decay_trunk(inputs.model)
    kind = "vit" if trunk == VIT else "resnet"
    groups = VisslGroupsRule(
        **inputs.regularization(), constructor=f"lr_decay_{kind}", weight_decay=inputs.main_decay()
    )
    path = inputs.at("layer_wise_lr_decay", "decay")
    decay = number(inputs.block["layer_wise_lr_decay"]["decay"], path, low=0.0, high=1.0)
    if decay == 0:
        raise ConfigError("must be in (0, 1], got 0 (every lr but the head's would be 0)", path)
    if "layer_decay" not in inputs.registry.rules:
        raise ConfigError(
            "lr_decay needs the 'layer_decay' rule kind (plugin optiplug_layer_decay), which is not installed", path
        )
    layer: dict[str, Any] = {"kind": "layer_decay", "decay": decay, "label": f"vissl lr_decay: {trunk} depths"}
    if kind == "vit":
        layer |= {"preset": "vissl_vit", "num_layers": inputs.model.vit_layers}
    else:
        layer |= {"preset": "vissl_resnet", "num_layers": RESNET_LAYERS, "stem": RESNET_STEM}
    depths = structure_config(layer, RuleConfig, inputs.registry, path)
    return [RuleConfig("vissl_groups", groups, label="vissl lr_decay: weight decay"), depths]


def _linear_eval_heads(inputs: GroupInputs) -> list[RuleConfig]:
    heads = eval_heads(inputs.block.get("linear_eval_heads"), inputs.at("linear_eval_heads"))
    regularization = inputs.regularization()
    rule = LinearEvalHeadsRule(
        heads,
        weight_decay=inputs.weight_decay(),
        regularize_bn=regularization["regularize_bn"],
        regularize_bias=regularization["regularize_bias"],
    )
    return [RuleConfig("vissl_linear_eval_heads", rule, label="vissl linear_eval_heads constructor")]


def eval_heads(value: Any, path: str) -> list[EvalHead]:
    """``OPTIMIZER.linear_eval_heads``: one ``{lr, weight_decay?, regularize_bn?}`` per head."""
    if value is None:
        raise ConfigError(
            "param_group_constructor linear_eval_heads needs this list: one {lr, weight_decay?, regularize_bn?} "
            "per head module heads.<i>",
            path,
        )
    if not isinstance(value, list | tuple):
        raise ConfigError(f"expected a list of {{lr, weight_decay?, regularize_bn?}}, got {value!r}", path)
    return [_eval_head(item, join_path(path, i)) for i, item in enumerate(value)]


def _eval_head(value: Any, path: str) -> EvalHead:
    entry = section(value, path)
    known_keys(entry, EVAL_HEAD_KEYS, path)
    if "lr" not in entry:
        raise ConfigError("each head needs its lr (the multiplier of the lr schedule)", join_path(path, "lr"))
    decay, bn = entry.get("weight_decay"), entry.get("regularize_bn")
    return EvalHead(
        lr=number(entry["lr"], join_path(path, "lr"), low=0.0),
        weight_decay=None if decay is None else number(decay, join_path(path, "weight_decay"), low=0.0),
        regularize_bn=None if bn is None else flag(bn, join_path(path, "regularize_bn")),
    )
