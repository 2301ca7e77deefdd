"""Per-parameter options: MMSelfSup's paramwise_options and MMCV 1.x's paramwise_cfg, against the algorithms."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError, OptiplugWarning

GROUP_KEYS = ("lr", "weight_decay", "momentum", "lars_exclude")


def options_by_name(built: optiplug.Built, model: nn.Module) -> dict[str, dict]:
    """Each parameter's options in the built optimizer."""
    group_of = {id(p): g for g in built.optimizer.param_groups for p in g["params"]}
    return {
        name: {k: group_of[id(p)][k] for k in GROUP_KEYS if k in group_of[id(p)]}
        for name, p in model.named_parameters()
    }


# ---------------------------------------------------------------- MMSelfSup 0.x: paramwise_options


def mmselfsup_options(model: nn.Module, optimizer: dict, paramwise_options: dict) -> dict[str, dict]:
    """MMSelfSup's paramwise_options: every matching regex (re.search) in order; *_mult times the global value."""
    defaults = {
        "lr": optimizer["lr"],
        "weight_decay": optimizer.get("weight_decay", 0),
        "momentum": optimizer.get("momentum", 0),
    }
    out = {}
    for name, _ in model.named_parameters():
        group = dict(defaults)
        for regexp, options in paramwise_options.items():
            if re.search(regexp, name):
                for key, value in options.items():
                    if key.endswith("_mult"):
                        base = key[: -len("_mult")]
                        group[base] = optimizer[base] * value
                    else:
                        group[key] = value
        out[name] = group
    return out


CHECKED_EXAMPLE = {
    r"(bn|gn)(\d+)?.(weight|bias)": dict(weight_decay=0.0, lars_exclude=True),
    "bias": dict(weight_decay=0.5, lr_mult=2),
    r"\Ahead.": dict(lr_mult=10, momentum=0),
}
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)


@pytest.mark.parametrize(
    "paramwise_options",
    [
        CHECKED_EXAMPLE,
        {r"(bn|gn)(\d+)?.(weight|bias)": dict(weight_decay=0.0), "bias": dict(weight_decay=0.0)},  # the seed's
        {
            "conv": dict(lr=0.3),
            "conv1.weight": dict(lr_mult=0.5, weight_decay_mult=3),
            "weight": dict(momentum_mult=0.5),
        },
    ],
    ids=["spec-checked", "seed", "fixed-then-mult"],
)
def test_paramwise_options_per_parameter(paramwise_options, conv_bn_head):
    optimizer = dict(SGD, paramwise_options=paramwise_options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = optiplug.build(dict(optimizer=optimizer), conv_bn_head)
    tolerated = any("lars_exclude" in str(o) for o in paramwise_options.values())
    assert [str(w.message).split(":")[0] for w in caught] == ["rules[0].set.lars_exclude"] * tolerated
    got = options_by_name(built, conv_bn_head)
    expected = mmselfsup_options(conv_bn_head, SGD, paramwise_options)
    for name, options in expected.items():
        assert {k: got[name].get(k, False) for k in options} == pytest.approx(options), name
        assert got[name].get("lars_exclude", False) == options.get("lars_exclude", False), name
    distinct = {tuple(sorted(o.items())) for o in expected.values()}
    assert len(built.optimizer.param_groups) == len(distinct)


def test_the_spec_checked_example(conv_bn_head):
    # MMCV copies lars_exclude into SGD's groups, where SGD ignores it: built as MMCV does, with a warning.
    with pytest.warns(OptiplugWarning, match=r"SGD has no group option 'lars_exclude'.*mmcv accepts this"):
        built = optiplug.build(dict(optimizer=dict(SGD, paramwise_options=CHECKED_EXAMPLE)), conv_bn_head)
    got = options_by_name(built, conv_bn_head)
    assert got["bn1.bias"] == {"lr": pytest.approx(0.2), "weight_decay": 0.5, "momentum": 0.9, "lars_exclude": True}
    assert got["head.bias"] == {"lr": pytest.approx(1.0), "weight_decay": 0.5, "momentum": 0}
    assert got["conv1.weight"] == {"lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9}


def test_seed_example_needs_two_groups(conv_bn_head):
    options = {r"(bn|gn)(\d+)?.(weight|bias)": dict(weight_decay=0.0), "bias": dict(weight_decay=0.0)}
    built = optiplug.build(
        dict(optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-4, paramwise_options=options)), conv_bn_head
    )
    sizes = sorted(len(g["params"]) for g in built.optimizer.param_groups)
    assert sizes == [2, 4]  # conv1.weight + head.weight keep the decay; bn1.* and the biases drop it


def test_a_pattern_matching_nothing_warns(conv_bn_head):
    options = {"backbone": dict(lr_mult=0.1)}
    with pytest.warns(OptiplugWarning, match=r"paramwise_options\['backbone'\].*matches no trainable parameter"):
        optiplug.build(dict(optimizer=dict(SGD, paramwise_options=options)), conv_bn_head)


def test_a_paramwise_cfg_key_used_as_a_pattern_says_so(conv_bn_head):
    # MMSelfSup's resnet50_mhead_linear config: a silent no-op there.
    optimizer = dict(SGD, paramwise_options=dict(norm_decay_mult=0.0))
    with pytest.warns(OptiplugWarning, match="'norm_decay_mult' is a paramwise_cfg key") as caught:
        built = optiplug.build(dict(optimizer=optimizer), conv_bn_head)
    assert "paramwise_cfg=dict(norm_decay_mult=...)" in str(caught[0].message)
    assert {g["weight_decay"] for g in built.optimizer.param_groups} == {1e-4}


@pytest.mark.parametrize(
    ("optimizer", "path", "words"),
    [
        (
            dict(SGD, paramwise_options={"bias": dict(eta_mult=2)}),
            "optimizer.paramwise_options['bias'].eta_mult",
            "optimizer does not set",
        ),
        (
            dict(SGD, paramwise_options={"bias": dict(decay_mult=0)}),
            "optimizer.paramwise_options['bias'].decay_mult",
            "'decay'",
        ),
        (
            dict(SGD, paramwise_options={"bias": 0.0}),
            "optimizer.paramwise_options['bias']",
            "expected a dict of options",
        ),
        (
            dict(SGD, paramwise_options={"(bn": dict(lr_mult=0)}),
            "optimizer.paramwise_options['(bn']",
            "invalid regular expression",
        ),
        (dict(SGD, paramwise_options=["bias"]), "optimizer.paramwise_options", "expected a dict"),
        (
            dict(SGD, paramwise_options={"bias": dict(lr_mult="2")}),
            "optimizer.paramwise_options['bias'].lr_mult",
            "numbers",
        ),
        (dict(SGD, paramwise_options={}, paramwise_cfg={}), "optimizer", "not both"),
        (
            dict(SGD, constructor="MAEFtOptimizerConstructor"),
            "optimizer.constructor",
            "DefaultOptimizerConstructor",
        ),
        (dict(SGD, type="SDG"), "optimizer.type", "did you mean 'SGD'"),
        (dict(SGD, momentom=0.9), "optimizer.momentom", "did you mean 'momentum'"),
    ],
)
def test_optimizer_errors_name_the_path(optimizer, path, words, conv_bn_head):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=optimizer), conv_bn_head)
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)


# ---------------------------------------------------------------- MMCV 1.x: paramwise_cfg


class DeformConv2d(nn.Module):
    """Stands in for mmcv.ops.DeformConv2dPack: a weight, a bias, and an offset conv child."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2, 2, 3, 3))
        self.bias = nn.Parameter(torch.zeros(2))
        self.conv_offset = nn.Conv2d(2, 18, 3)


class SubModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, groups=2)  # depthwise
        self.gn = nn.GroupNorm(2, 2)
        self.fc = nn.Linear(2, 2)
        self.param1 = nn.Parameter(torch.ones(1))


class ExampleModel(nn.Module):
    """Every case MMCV's constructor distinguishes (after mmcv's test_optimizer.py model)."""

    def __init__(self) -> None:
        super().__init__()
        self.param1 = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(3, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 2, 1)
        self.bn = nn.BatchNorm2d(2)
        self.ln = nn.LayerNorm(2)
        self.sub = SubModel()
        self.dcn = DeformConv2d()
        self.shared = self.conv2  # visited twice by MMCV: bypass_duplicate


NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def mmcv_options(model: nn.Module, base_lr: float, base_wd: float | None, cfg: dict) -> dict[str, dict]:
    """MMCV 1.x's DefaultOptimizerConstructor.add_params, recursively over modules."""
    keys = sorted(sorted(cfg.get("custom_keys", {})), key=len, reverse=True)
    seen: set[int] = set()
    out: dict[str, dict] = {}

    def add(module: nn.Module, prefix: str, is_dcn: bool) -> None:
        is_norm = isinstance(module, NORMS)
        is_dw = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # bypass_duplicate
                continue
            seen.add(id(param))
            group = {"lr": base_lr, "weight_decay": base_wd}
            key = next((k for k in keys if k in f"{prefix}.{name}"), None)
            if key is not None:
                group["lr"] = base_lr * cfg["custom_keys"][key].get("lr_mult", 1.0)
                if base_wd is not None:
                    group["weight_decay"] = base_wd * cfg["custom_keys"][key].get("decay_mult", 1.0)
            else:
                if name == "bias" and not (is_norm or is_dcn):
                    group["lr"] = base_lr * cfg.get("bias_lr_mult", 1.0)
                if "conv_offset" in prefix and is_dcn and isinstance(module, nn.Conv2d):
                    group["lr"] = base_lr * cfg.get("dcn_offset_lr_mult", 1.0)
                if base_wd is not None:
                    if is_norm:
                        group["weight_decay"] = base_wd * cfg.get("norm_decay_mult", 1.0)
                    elif is_dw:
                        group["weight_decay"] = base_wd * cfg.get("dwconv_decay_mult", 1.0)
                    elif name == "bias" and not is_dcn:
                        group["weight_decay"] = base_wd * cfg.get("bias_decay_mult", 1.0)
            out[f"{prefix}.{name}" if prefix else name] = group
        child_dcn = type(module).__name__ == "DeformConv2d"
        for child_name, child in module.named_children():
            add(child, f"{prefix}.{child_name}" if prefix else child_name, child_dcn)

    add(model, "", False)
    return out


PARAMWISE_CFGS = {
    "all-type-rules": dict(
        bias_lr_mult=2, bias_decay_mult=0.5, norm_decay_mult=0, dwconv_decay_mult=0.1, dcn_offset_lr_mult=0.1
    ),
    "bias-only": dict(bias_decay_mult=0.0),  # BN and depthwise biases keep the full decay
    "custom-keys": dict(
        norm_decay_mult=0,
        custom_keys={
            "param1": dict(lr_mult=10),
            "sub": dict(lr_mult=0.1, decay_mult=2),
            "sub.gn": dict(decay_mult=3),
            ".param1": dict(lr_mult=5),
        },
    ),
    "bypass": dict(bias_lr_mult=2, bypass_duplicate=True),
}


@pytest.mark.parametrize("label", PARAMWISE_CFGS)
def test_paramwise_cfg_per_parameter(label):
    model = ExampleModel()
    cfg = PARAMWISE_CFGS[label]
    built = optiplug.build(
        dict(optimizer=dict(type="SGD", lr=0.01, weight_decay=1e-4, momentum=0.9, paramwise_cfg=cfg)), model
    )
    got = options_by_name(built, model)
    expected = mmcv_options(model, 0.01, 1e-4, cfg)
    assert set(got) == set(expected)
    for name, options in expected.items():
        assert got[name]["lr"] == pytest.approx(options["lr"], rel=1e-15), name
        assert got[name]["weight_decay"] == pytest.approx(options["weight_decay"], rel=1e-15), name
    distinct = {(o["lr"], o["weight_decay"]) for o in expected.values()}
    assert len(built.optimizer.param_groups) == len(distinct)


@pytest.mark.parametrize(
    "cfg",
    [
        dict(bias_lr_mult=2, bias_decay_mult=0.5, norm_decay_mult=0),
        dict(norm_decay_mult=0, custom_keys={"head": dict(lr_mult=10), "bn1.bias": dict(decay_mult=3)}),
    ],
    ids=["type-rules", "custom-keys"],
)
def test_paramwise_cfg_on_conv_bn_head(cfg, conv_bn_head):
    built = optiplug.build(
        dict(optimizer=dict(type="SGD", lr=0.01, weight_decay=1e-4, paramwise_cfg=cfg)), conv_bn_head
    )
    got = {n: (o["lr"], o["weight_decay"]) for n, o in options_by_name(built, conv_bn_head).items()}
    expected = {n: (o["lr"], o["weight_decay"]) for n, o in mmcv_options(conv_bn_head, 0.01, 1e-4, cfg).items()}
    assert got == expected
    assert len(built.optimizer.param_groups) == len(set(expected.values()))


def test_custom_keys_precedence():
    # mmcv's test_default_optimizer_constructor: 'param1' beats 'sub' for sub.param1; 'sub.gn' beats norm_decay_mult.
    model = ExampleModel()
    cfg = dict(
        norm_decay_mult=0,
        custom_keys={"param1": dict(lr_mult=10), "sub": dict(lr_mult=0.1), "sub.gn": dict(decay_mult=2)},
    )
    built = optiplug.build(dict(optimizer=dict(type="SGD", lr=0.01, weight_decay=1e-4, paramwise_cfg=cfg)), model)
    got = options_by_name(built, model)
    assert got["sub.param1"]["lr"] == pytest.approx(0.1)
    assert got["sub.gn.weight"] == {
        "lr": 0.01,
        "weight_decay": pytest.approx(2e-4),
        "momentum": 0,
    }  # the longest key alone
    assert got["bn.weight"]["weight_decay"] == 0
    assert got["dcn.conv_offset.bias"]["lr"] == 0.01


def test_without_weight_decay_only_the_lr_rules_apply():
    # AdamW's default decay stays on every group when the config sets no weight_decay (MMCV's base_wd None).
    model = ExampleModel()
    built = optiplug.build(dict(optimizer=dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(bias_lr_mult=2))), model)
    assert {g["weight_decay"] for g in built.optimizer.param_groups} == {0.01}
    assert sorted(g["lr"] for g in built.optimizer.param_groups) == pytest.approx([1e-3, 2e-3])


def test_a_canonical_recipe_uses_the_rule_kind():
    model = ExampleModel()
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.01, "weight_decay": 1e-4},
        "rules": [{"kind": "mmcv_paramwise", "norm_decay_mult": 0}],
    }
    got = options_by_name(optiplug.build(recipe, model), model)
    expected = mmcv_options(model, 0.01, 1e-4, dict(norm_decay_mult=0))
    assert {n: (o["lr"], o["weight_decay"]) for n, o in got.items()} == {
        n: (o["lr"], o["weight_decay"]) for n, o in expected.items()
    }


@pytest.mark.parametrize(
    ("paramwise_cfg", "optimizer", "path", "words"),
    [
        (dict(norm_decay_mult=0), dict(type="SGD", lr=0.1), "optimizer.paramwise_cfg", "needs optimizer.weight_decay"),
        (
            dict(custom_keys={"head": dict(decay_mult=0)}),
            dict(type="SGD", lr=0.1),
            "optimizer.paramwise_cfg",
            "custom_keys['head'].decay_mult",
        ),
        (dict(flat_decay_mult=0), SGD, "optimizer.paramwise_cfg.flat_decay_mult", "unknown key"),
        (dict(bias_lr_mult=-1), SGD, "optimizer.paramwise_cfg.bias_lr_mult", ">= 0"),
        (["bias_lr_mult"], SGD, "optimizer.paramwise_cfg", "expected None or a dict"),
    ],
)
def test_paramwise_cfg_errors_name_the_path(paramwise_cfg, optimizer, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=dict(optimizer, paramwise_cfg=paramwise_cfg)), ExampleModel())
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("paramwise_cfg", "words"),
    [
        (dict(norm_decay_mul=0), "optimizer.paramwise_cfg.norm_decay_mul: MMCV's constructor does not read this key"),
        (dict(custom_keys={"bn": dict(lars_exclude=True)}), "custom_keys.bn.lars_exclude: MMCV reads only lr_mult"),
    ],
)
def test_paramwise_cfg_keys_mmcv_ignores_warn(paramwise_cfg, words):
    # DefaultOptimizerConstructor reads its keys with .get(): others change nothing, as here.
    with pytest.warns(OptiplugWarning, match=words):
        built = optiplug.build(dict(optimizer=dict(SGD, paramwise_cfg=paramwise_cfg)), ExampleModel())
    assert len(built.optimizer.param_groups) == 1


def test_paramwise_cfg_without_effect_warns():
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with pytest.warns(OptiplugWarning, match="paramwise_cfg"):
        optiplug.build(
            dict(optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-4, paramwise_cfg=dict(norm_decay_mult=0))), model
        )
