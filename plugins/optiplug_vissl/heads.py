"""VISSL's ``linear_eval_heads`` constructor and ``MODEL.NON_TRAINABLE_PARAMS``, as rule kinds.

``linear_eval_heads`` (VISSL's ``vissl/optimizers/param_groups/layer_decay.py``) walks
the modules whose dotted name contains ``heads``. A module named ``heads.<i>...`` belongs to head i and
takes that head's entry of ``OPTIMIZER.linear_eval_heads``: its lr is the lr schedule times
the entry's ``lr`` (VISSL's ``LayerDecayScheduler``), its regularized weight decay the
entry's ``weight_decay`` (else ``OPTIMIZER.weight_decay``) and its norm layers follow the
entry's ``regularize_bn`` (else ``OPTIMIZER.regularize_bn``). Other ``heads`` modules take
the lr schedule itself and the block's values. Linear/Conv weights are regularized, their
biases if ``regularize_bias``; norm weights if ``regularize_bn``, norm biases if both.

Every other trainable parameter (the trunk, or a head's parameters outside Linear/Conv/norm
modules) is in none of VISSL's groups, so VISSL never updates it. optiplug's groups hold
every trainable parameter, so these go to a group with lr 0 and weight decay 0: never
updated either.

``vissl_frozen`` freezes the parameters named in ``MODEL.NON_TRAINABLE_PARAMS``
(``requires_grad = False``, as VISSL does while building its groups) and gives them lr 0
and weight decay 0 in a group of their own.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from optiplug import ConfigError, ParamInfo, RuleSpec
from optiplug.plugin import RuleMatcher, did_you_mean, help_field, non_negative
from optiplug_vissl.groups import is_layer, is_norm

HEAD_INDEX = re.compile(r"heads\.([0-9]*)")
LEFT_OUT = {"lr": 0.0, "weight_decay": 0.0}


@attrs.frozen
class EvalHead:
    """One entry of ``OPTIMIZER.linear_eval_heads``."""

    lr: float = help_field("The head's lr multiplier: its lr is the lr schedule times this.", validator=non_negative())
    weight_decay: float | None = help_field(
        "The head's regularized weight decay; default: the rule's weight_decay.", default=None, validator=non_negative()
    )
    regularize_bn: bool | None = help_field(
        "Whether the head's norm weights get weight decay; default: the rule's regularize_bn.", default=None
    )


@attrs.frozen
class LinearEvalHeadsRule:
    """``kind: vissl_linear_eval_heads``: per-head lr multiplier and weight decay (VISSL ``linear_eval_heads``)."""

    heads: list[EvalHead] = help_field("One entry per head module heads.<i>, in index order.", factory=list)
    weight_decay: float = help_field(
        "Regularized weight decay of heads without their own (OPTIMIZER.weight_decay).",
        default=0.0001,
        validator=non_negative(),
    )
    regularize_bn: bool = help_field("Norm-layer weights get weight decay (heads may override).", default=False)
    regularize_bias: bool = help_field(
        "Linear/Conv biases get weight decay (norm biases only with regularize_bn too).", default=True
    )


@attrs.frozen
class FrozenRule:
    """``kind: vissl_frozen``: parameters frozen by name (VISSL's ``MODEL.NON_TRAINABLE_PARAMS``)."""

    names: list[str] = help_field("Full parameter names (model.named_parameters()), matched exactly.", factory=list)


def _head_options(config: LinearEvalHeadsRule, module_name: str) -> tuple[float, float, bool]:
    """(lr multiplier, regularized weight decay, regularize_bn) of the head module ``module_name``."""
    match = HEAD_INDEX.match(module_name)
    if match is None:
        return 1.0, config.weight_decay, config.regularize_bn
    if not match.group(1):
        raise ConfigError(
            f"module {module_name!r}: VISSL reads the head index from 'heads.<i>' and finds none here "
            "(it would fail with int(''))",
            "heads",
        )
    index = int(match.group(1))
    if index >= len(config.heads):
        raise ConfigError(
            f"module {module_name!r} is head {index}, but {len(config.heads)} heads are configured "
            "(OPTIMIZER.linear_eval_heads needs one entry per head)",
            "heads",
        )
    head = config.heads[index]
    weight_decay = config.weight_decay if head.weight_decay is None else head.weight_decay
    regularize_bn = config.regularize_bn if head.regularize_bn is None else head.regularize_bn
    return head.lr, weight_decay, regularize_bn


def _linear_eval_heads(config: LinearEvalHeadsRule) -> RuleMatcher:
    def match(info: ParamInfo) -> dict[str, float]:
        module, name = info.module, info.module_name
        if "heads" not in name or not (is_layer(module) or is_norm(module)):
            return LEFT_OUT
        lr, weight_decay, regularize_bn = _head_options(config, name)
        is_bias = info.leaf_name == "bias"
        if is_layer(module):
            regularized = not is_bias or config.regularize_bias
        else:
            regularized = regularize_bn and (not is_bias or config.regularize_bias)
        return {"lr_mult": lr, "weight_decay": weight_decay if regularized else 0.0}

    return match


def _frozen(config: FrozenRule) -> RuleMatcher:
    names = set(config.names)
    checked: set[int] = set()

    def match(info: ParamInfo) -> Any:
        if info.root is not None and id(info.root) not in checked:
            _check_names(config.names, [n for n, _ in info.root.named_parameters()])
            checked.add(id(info.root))
        if info.name not in names:
            return False
        info.param.requires_grad_(False)
        return LEFT_OUT

    return match


def _check_names(names: list[str], model_names: list[str]) -> None:
    known = set(model_names)
    for i, name in enumerate(names):
        if name not in known:
            raise ConfigError(
                f"{name!r} names no parameter of the model{did_you_mean(name, model_names)} "
                "(MODEL.NON_TRAINABLE_PARAMS: full names, as model.named_parameters() gives them)",
                f"names[{i}]",
            )


def rule_specs() -> list[RuleSpec]:
    """The records of the rule kinds."""
    return [
        RuleSpec(
            "vissl_linear_eval_heads",
            LinearEvalHeadsRule,
            _linear_eval_heads,
            "VISSL's linear_eval_heads: per-head lr multiplier and weight decay; other parameters lr 0",
        ),
        RuleSpec(
            "vissl_frozen",
            FrozenRule,
            _frozen,
            "VISSL's MODEL.NON_TRAINABLE_PARAMS: frozen (requires_grad False), lr 0 and weight decay 0",
        ),
    ]
