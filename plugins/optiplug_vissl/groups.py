"""VISSL's param-group constructors as optiplug rule kinds.

``default`` (VISSL's ``vissl/optimizers/param_groups/default.py``) walks the modules:

* a module whose dotted name contains ``head`` is a head module;
* Linear and Conv1d/2d/3d: the weight (or weight-norm's ``weight_g``/``weight_v``) is
  regularized, the bias only if ``regularize_bias``;
* BatchNorm1d/2d/3d, SyncBatchNorm (torch and apex) and LayerNorm: the weight is
  regularized only if ``regularize_bn``, the bias only if ``regularize_bn`` and
  ``regularize_bias``;
* the direct parameters of every other module, head or not, are "remaining": trunk lr,
  main weight decay;
* a parameter whose name contains one of ``non_regularized_parameters`` and would be
  regularized moves to "remaining unregularized" (trunk lr, weight decay 0).

Head parameters use ``lr_head`` and the head's weight decay. ``dino`` (and ``lr_decay``
for a vision transformer) puts biases and parameters with ``norm`` in their name at weight
decay 0, the rest at the main one. ``lr_decay`` for a ResNet decays every parameter
except biases (unless ``regularize_bias``) and names matching ``.bn<k>.`` (unless
``regularize_bn``).

Two rule kinds carry this: ``vissl_groups`` (every parameter: its weight decay) and
``vissl_head`` (the head's Linear/Conv/norm parameters, for the head's own schedules).
The ``lr_decay`` depths are the ``layer_decay`` rule's (plugin optiplug_layer_decay);
``linear_eval_heads`` and ``MODEL.NON_TRAINABLE_PARAMS`` have their own kinds
(:mod:`optiplug_vissl.heads`).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from torch import nn

from optiplug import ParamInfo, RuleSpec
from optiplug.plugin import RuleMatcher, help_field, non_negative, one_of

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm)
TRUNK, HEAD, REMAINING = "trunk", "head", "remaining"
CONSTRUCTORS = ("default", "dino", "lr_decay_vit", "lr_decay_resnet")
BY_NAME = ("dino", "lr_decay_vit")  # unregularized: names ending in .bias or containing "norm"
RESNET_NORM = re.compile(r"\.bn[0-9]*\.")


@attrs.frozen
class Placement:
    """Where VISSL's constructor puts a parameter: trunk, head or remaining; regularized or not."""

    part: str
    regularized: bool


@attrs.frozen
class Regularization:
    """The OPTIMIZER keys that decide which parameters get weight decay."""

    regularize_bn: bool = help_field("Norm-layer weights get weight decay.", default=False)
    regularize_bias: bool = help_field(
        "Linear/Conv biases get weight decay (norm biases only with regularize_bn too).", default=True
    )
    non_regularized_parameters: list[str] = help_field(
        "Substrings of parameter names that get no weight decay (with the trunk's lr).", factory=list
    )
    constructor: str = help_field(
        "VISSL's param_group_constructor: 'default', 'dino', or 'lr_decay' for a ViT ('lr_decay_vit') "
        "or a ResNet ('lr_decay_resnet').",
        default="default",
        validator=one_of(CONSTRUCTORS),
    )


@attrs.frozen
class VisslGroupsRule(Regularization):
    """``kind: vissl_groups``: every parameter gets VISSL's weight decay for its place."""

    weight_decay: float | None = help_field(
        "Weight decay of regularized trunk and remaining parameters; null when scheduled.",
        default=None,
        validator=non_negative(),
    )
    head_weight_decay: float | None = help_field(
        "Weight decay of regularized head parameters; null when scheduled (weight_decay_head).",
        default=None,
        validator=non_negative(),
    )


@attrs.frozen
class VisslHeadRule(Regularization):
    """``kind: vissl_head``: the head's Linear/Conv/norm parameters (for lr_head, weight_decay_head)."""

    regularized_only: bool = help_field("Select only the head's regularized parameters.", default=False)


def is_layer(module: Any) -> bool:
    """A Linear or Conv1d/2d/3d module (VISSL's ``_CONV_TYPES`` and ``nn.Linear``)."""
    return isinstance(module, LAYERS)


def is_norm(module: Any) -> bool:
    """A norm layer as VISSL counts them: BatchNorm1d/2d/3d, SyncBatchNorm (torch, apex), LayerNorm."""
    if isinstance(module, NORMS):
        return True
    cls = type(module)
    return cls.__module__.startswith("apex.") and cls.__name__ == "SyncBatchNorm"


def place(info: ParamInfo, config: Regularization) -> Placement:
    """Where VISSL's ``config.constructor`` puts the parameter ``info``."""
    if config.constructor in BY_NAME:
        return Placement(TRUNK, not (info.name.endswith(".bias") or "norm" in info.name))
    if config.constructor == "lr_decay_resnet":
        return Placement(TRUNK, _resnet_regularized(info.name, config))
    is_bias = info.leaf_name == "bias"
    if is_layer(info.module):
        regularized = not is_bias or config.regularize_bias
    elif is_norm(info.module):
        regularized = config.regularize_bn and (not is_bias or config.regularize_bias)
    else:
        return _unless_named(Placement(REMAINING, True), info, config)
    part = HEAD if "head" in info.module_name else TRUNK
    return _unless_named(Placement(part, regularized), info, config)


def _resnet_regularized(name: str, config: Regularization) -> bool:
    if name.endswith(".bias"):
        return config.regularize_bias
    if RESNET_NORM.search(name):
        return config.regularize_bn
    return True


def _unless_named(placement: Placement, info: ParamInfo, config: Regularization) -> Placement:
    if placement.regularized and any(s in info.name for s in config.non_regularized_parameters):
        return Placement(REMAINING, False)
    return placement


def _groups(config: VisslGroupsRule) -> RuleMatcher:
    def match(info: ParamInfo) -> Any:
        placement = place(info, config)
        if not placement.regularized:
            return {"weight_decay": 0.0}
        decay = config.head_weight_decay if placement.part == HEAD else config.weight_decay
        return True if decay is None else {"weight_decay": decay}

    return match


def _head(config: VisslHeadRule) -> RuleMatcher:
    def match(info: ParamInfo) -> bool:
        placement = place(info, config)
        return placement.part == HEAD and (placement.regularized or not config.regularized_only)

    return match


def rule_specs() -> list[RuleSpec]:
    """The records of the rule kinds."""
    return [
        RuleSpec("vissl_groups", VisslGroupsRule, _groups, "VISSL's param-group constructor: weight decay by place"),
        RuleSpec(
            "vissl_head", VisslHeadRule, _head, "VISSL's head parameters (Linear/Conv/norm under a 'head' module)"
        ),
    ]
