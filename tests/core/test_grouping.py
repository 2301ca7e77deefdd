"""Param-group rules -> the fewest groups, with readable summaries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug
from tests_helpers import ResNetLike

NO_DECAY = [{"kind": "norm", "set": {"weight_decay": 0}}, {"kind": "bias", "set": {"weight_decay": 0}}]


def build(rules, model, **optimizer):
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, **optimizer},
        "rules": rules,
    }
    return optiplug.build(config, model)


def test_resnet_no_decay_on_norm_and_bias_and_10x_head_in_three_groups():
    model = ResNetLike()
    rules = [*NO_DECAY, {"kind": "module_path", "prefix": "head", "set": {"lr_mult": 10}}]
    built = build(rules, model)
    options = [(g["lr"], g["weight_decay"]) for g in built.optimizer.param_groups]
    assert options == [(0.1, 1e-4), (0.1, 0.0), (1.0, 1e-4), (1.0, 0.0)]
    by_name = dict(
        zip(
            [n for g in built.groups for n in g.names],
            [i for g in built.groups for i in [g.index] * g.tensors],
            strict=True,
        )
    )
    assert by_name["conv1.weight"] == 0
    assert by_name["layer1.0.downsample.1.weight"] == 1
    assert by_name["head.weight"] == 2
    assert by_name["head.bias"] == 3
    assert sum(g.tensors for g in built.groups) == len(list(model.parameters()))


def test_without_head_rule_a_resnet_needs_two_groups():
    built = build(NO_DECAY, ResNetLike())
    assert len(built.optimizer.param_groups) == 2


def test_later_rules_win_and_multipliers_scale_the_optimizer_value(conv_bn_head):
    rules = [
        {
            "kind": "regex",
            "pattern": r"(bn|gn)(\d+)?.(weight|bias)",
            "set": {"weight_decay": 0.0, "lars_exclude": True},
        },
        {"kind": "regex", "pattern": "bias", "set": {"weight_decay": 0.5, "lr_mult": 2}},
        {"kind": "regex", "pattern": r"\Ahead.", "set": {"lr_mult": 10, "momentum": 0}},
    ]
    built = build(rules, conv_bn_head, name="lars")  # LARS reads lars_exclude; SGD would refuse it
    options = {name: g for g in built.groups for name in g.names}
    group = {name: built.optimizer.param_groups[options[name].index] for name in options}
    assert (group["bn1.bias"]["weight_decay"], group["bn1.bias"]["lars_exclude"], group["bn1.bias"]["lr"]) == (
        0.5,
        True,
        0.2,
    )
    assert (group["head.bias"]["lr"], group["head.bias"]["momentum"], group["head.bias"]["weight_decay"]) == (
        1.0,
        0,
        0.5,
    )
    assert group["conv1.weight"]["lr"] == 0.1 and "lars_exclude" not in group["conv1.weight"]
    assert group["bn1.weight"]["weight_decay"] == 0.0


def test_frozen_parameters_are_left_out_and_tied_ones_appear_once():
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 5, bias=False), nn.Linear(4, 4))
    model[1].weight = model[0].weight
    model[2].requires_grad_(False)
    built = build([], model)
    names = [n for g in built.groups for n in g.names]
    assert names == ["0.weight"]


def test_a_rule_that_matches_nothing_warns(conv_bn_head):
    with pytest.warns(
        optiplug.OptiplugWarning, match=r"rules\[0\] \(regex\(pattern='decoder'\)\) matches no trainable parameter"
    ):
        build([{"kind": "regex", "pattern": "decoder", "set": {"lr_mult": 2}}], conv_bn_head)


def test_summary_names_rules_and_sizes(conv_bn_head):
    built = build(NO_DECAY, conv_bn_head)
    text = str(built.groups[1])
    assert text.startswith("group 1: 4 tensors, 15 elements, lr=0.1, weight_decay=0")
    assert text.endswith("<- bias; norm")
    assert "2 groups" in repr(built)


def test_rule_kinds(conv_bn_head):
    cases = {
        "ndim": ({"kind": "ndim", "max": 1}, {"conv1.bias", "bn1.weight", "bn1.bias", "head.bias"}),
        "module_type": ({"kind": "module_type", "types": ["Linear"]}, {"head.weight", "head.bias"}),
        "name": ({"kind": "name", "contains": "1.w"}, {"conv1.weight", "bn1.weight"}),
        "all": ({"kind": "all"}, {"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "head.weight", "head.bias"}),
    }
    for kind, (rule, expected) in cases.items():
        built = build([{**rule, "set": {"weight_decay": 0.0}}], conv_bn_head)
        zero = {
            n for g in built.groups for n in g.names if built.optimizer.param_groups[g.index]["weight_decay"] == 0.0
        }
        assert zero == expected, kind


def test_plain_parameter_lists_and_named_pairs():
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2, 2))
    built = build([{"kind": "ndim", "max": 1, "set": {"weight_decay": 0}}], [("a", a), ("b", b)])
    assert [g.names for g in built.groups] == [("a",), ("b",)]
    assert len(build([], [a, b]).optimizer.param_groups) == 1


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.ReLU(), "the model has no trainable parameters"),
        (torch.ones(2, requires_grad=True), "got a single tensor"),
        (3, "expected an nn.Module or an iterable of parameters, got int"),
        ([{"params": []}], "param-group dicts are built by optiplug"),
    ],
)
def test_bad_models_are_refused_clearly(model, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        build([], model)


def test_multiplier_without_optimizer_value_is_a_config_error(conv_bn_head):
    config = {"optimizer": {"name": "adagrad"}, "rules": [{"kind": "bias", "set": {"momentum_mult": 2}}]}
    with pytest.raises(optiplug.ConfigError, match=r"rules\[0\].set.momentum_mult: momentum_mult needs a number"):
        optiplug.build(config, conv_bn_head)


def test_invalid_regex_names_the_rule(conv_bn_head):
    with pytest.raises(optiplug.ConfigError, match=r"rules\[1\].pattern: invalid regular expression '\('"):
        build([{"kind": "bias"}, {"kind": "regex", "pattern": "("}], conv_bn_head)


def test_option_values_must_fit_the_optimizer(conv_bn_head):
    cases = [
        ({"weight_decay": "abc"}, r"rules\[0\].set.weight_decay: expected a number, got 'abc'"),
        ({"nesterov": 1}, r"rules\[0\].set.nesterov: expected true or false, got 1"),
    ]
    for options, message in cases:
        with pytest.raises(optiplug.ConfigError, match=message):
            build([{"kind": "bias", "set": options}], conv_bn_head)
    with pytest.raises(optiplug.ConfigError, match=r"rules\[0\].set.betas: expected 2 numbers, got \[0.9\]"):
        optiplug.build(
            {"optimizer": {"name": "adam"}, "rules": [{"kind": "bias", "set": {"betas": [0.9]}}]}, conv_bn_head
        )


class CountingRules:
    """A plugin with two rule kinds that record every parameter they are asked about."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @optiplug.hookimpl
    def optiplug_param_rules(self):
        def counting(kind, decide):
            def matcher(_config):
                def match(info):
                    self.calls.append((kind, info.name))
                    return decide(info)

                return match

            return optiplug.RuleSpec(kind, None, matcher, kind)

        return [
            counting("every_weight", lambda info: info.leaf_name == "weight"),
            # options of its own, which differ between parameters matched by the same rules: lr_mult = numel
            counting("by_size", lambda info: {"lr_mult": float(info.param.numel())}),
        ]


def counting_registry():
    from optiplug.plugin_system.catalogues import Registry
    from optiplug.plugin_system.manager import make_plugin_manager

    plugin = CountingRules()
    pm = make_plugin_manager(plugins=[("counting", plugin)])
    return Registry(pm), plugin


def test_each_rule_asks_about_each_parameter_once(conv_bn_head):
    registry, plugin = counting_registry()
    rules = [{"kind": "every_weight", "set": {"weight_decay": 0}}, {"kind": "every_weight", "set": {"lr_mult": 2}}]
    config = {"optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 1e-4}, "rules": rules}
    built = optiplug.build(config, conv_bn_head, registry=registry)
    names = [name for name, _ in conv_bn_head.named_parameters()]
    assert sorted(plugin.calls) == sorted((kind, name) for kind in ("every_weight",) * 2 for name in names)
    assert [(g["lr"], g["weight_decay"]) for g in built.optimizer.param_groups] == [(0.2, 0.0), (0.1, 1e-4)]


def test_options_a_rule_returns_split_parameters_matched_by_the_same_rules(conv_bn_head):
    registry, _ = counting_registry()
    config = {"optimizer": {"name": "sgd", "lr": 1.0}, "rules": [{"kind": "every_weight"}, {"kind": "by_size"}]}
    built = optiplug.build(config, conv_bn_head, registry=registry)
    lrs = {name: built.optimizer.param_groups[g.index]["lr"] for g in built.groups for name in g.names}
    assert lrs == {name: float(p.numel()) for name, p in conv_bn_head.named_parameters()}
    # bn1.weight, bn1.bias and conv1.bias have 4 elements each: one group, whatever rules matched them
    assert len(built.groups) == 4
    assert next(g for g in built.groups if "bn1.bias" in g.names).names == ("conv1.bias", "bn1.weight", "bn1.bias")
