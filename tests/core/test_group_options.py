"""The options a rule sets are checked where they are declared (issue 15, item 1).

A rule may set the optimizer's own group options, the keys its plugin and the wrappers'
plugins declare (LARS's ``lars_exclude``) and multipliers of numeric options (``lr_mult``,
``decay_mult``, ``momentum_mult``, ...); anything else is a ConfigError at
``rules[i].set.key`` with a did-you-mean, in the JSON schema as well. MMCV copies any
key into the group, so its dialect builds such a config with a warning.
"""

from __future__ import annotations

import warnings

import pytest

import optiplug
from optiplug import ConfigError, OptiplugWarning
from optiplug.engine.tolerance import STRICT, Tolerance
from optiplug.plugin_system.records import DialectSpec
from optiplug.tooling.schema import recipe_schema

SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}


def recipe(*sets, optimizer=SGD):
    return {"optimizer": optimizer, "rules": [{"kind": "bias", "set": s} for s in sets]}


@pytest.mark.parametrize(
    ("set_", "path", "hint"),
    [
        ({"weigth_decay": 0}, r"rules\[0\]\.set\.weigth_decay", "did you mean 'weight_decay'"),
        ({"lr_mul": 10}, r"rules\[0\]\.set\.lr_mul", "did you mean 'lr_mult'"),
        ({"momentun": 0.5}, r"rules\[0\]\.set\.momentun", "did you mean 'momentum'"),
        ({"lars_exclude": True}, r"rules\[0\]\.set\.lars_exclude", "SGD has no group option 'lars_exclude'"),
    ],
)
def test_a_misspelt_or_foreign_option_is_refused_at_its_path(set_, path, hint, conv_bn_head):
    with pytest.raises(ConfigError, match=rf"^{path}: SGD has no group option .*") as caught:
        optiplug.build(recipe(set_), conv_bn_head)
    assert hint in str(caught.value)
    assert "lr_mult, decay_mult" in str(caught.value)


def test_a_rule_that_matches_nothing_is_checked_too(conv_bn_head):
    config = {
        "optimizer": SGD,
        "rules": [{"kind": "bias"}, {"kind": "regex", "pattern": "nothing", "set": {"weigth_decay": 0}}],
    }
    with pytest.raises(ConfigError, match=r"^rules\[1\]\.set\.weigth_decay: .*did you mean 'weight_decay'"):
        optiplug.build(config, conv_bn_head)


def test_a_file_recipe_names_the_rule_path(tmp_path, conv_bn_head):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "optimizer: {name: AdamW, lr: 0.001}\n"
        "rules:\n  - {kind: norm, set: {weight_decay: 0}}\n  - {kind: bias, set: {beta: 0.5}}\n"
    )
    with pytest.raises(ConfigError, match=r"^rules\[1\]\.set\.beta: AdamW has no group option 'beta' \(did you mean"):
        optiplug.build(str(path), conv_bn_head)


def test_options_multipliers_and_declared_extras_are_accepted(conv_bn_head):
    built = optiplug.build(
        recipe({"weight_decay": 0, "lr_mult": 2, "decay_mult": 3, "momentum_mult": 0.5}), conv_bn_head
    )
    bias = next(g for g in built.optimizer.param_groups if g["lr"] != 0.1)
    # the rule's values against the optimizer's: 2 * 0.1, 0.5 * 0.9; decay_mult after weight_decay wins
    assert (bias["lr"], bias["momentum"], bias["weight_decay"]) == pytest.approx((0.2, 0.45, 3e-4))
    lars = {"name": "lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6}
    built = optiplug.build(recipe({"lars_exclude": True, "weight_decay": 0}, optimizer=lars), conv_bn_head)
    assert sum(bool(g.get("lars_exclude")) for g in built.optimizer.param_groups) == 1


def test_a_multiplier_of_an_option_the_optimizer_lacks_keeps_its_message(conv_bn_head):
    config = recipe({"momentum_mult": 2}, optimizer={"name": "adagrad"})
    with pytest.raises(ConfigError, match=r"^rules\[0\]\.set\.momentum_mult: momentum_mult needs a number .*Adagrad"):
        optiplug.build(config, conv_bn_head)
    config = recipe({"weigth_decay_mult": 2})
    with pytest.raises(ConfigError, match=r"weigth_decay_mult needs a number.*did you mean 'weight_decay_mult'"):
        optiplug.build(config, conv_bn_head)


def test_mmcv_copies_any_key_into_the_group_so_its_dialect_warns(conv_bn_head):
    config = {
        "optimizer": {
            "type": "SGD",
            "lr": 0.1,
            "momentum": 0.9,
            "paramwise_options": {"bias": {"weigth_decay": 0.0}},
        }
    }
    with pytest.warns(OptiplugWarning, match=r"^rules\[0\]\.set\.weigth_decay: SGD has no group option") as caught:
        built = optiplug.build(config, conv_bn_head)
    assert "did you mean 'weight_decay'" in str(caught[0].message)
    assert "paramwise_options['bias']" in str(caught[0].message) and "mmcv accepts this" in str(caught[0].message)
    groups = [g for g in built.optimizer.param_groups if "weigth_decay" in g]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0  # as MMCV builds it: the typo copied, decay untouched


def test_the_canonical_recipe_of_a_tolerated_mmcv_config_is_refused(conv_bn_head):
    config = {"optimizer": {"type": "SGD", "lr": 0.1, "paramwise_options": {"bias": {"lars_exclude": True}}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptiplugWarning)
        optiplug.build(config, conv_bn_head)
    with pytest.raises(ConfigError, match="SGD has no group option 'lars_exclude'"):
        optiplug.build(optiplug.to_recipe(config), conv_bn_head)


def test_tolerance_refuses_unless_the_dialect_tolerates_the_check():
    error = ConfigError("too big", "a.b")
    with pytest.raises(ConfigError, match="too big"):
        STRICT.refuse("group_options", error)
    with pytest.warns(OptiplugWarning, match=r"^a\.b: too big \(x accepts this"):
        Tolerance(frozenset({"group_options"}), "x").refuse("group_options", error)
    with pytest.raises(ConfigError):
        Tolerance(frozenset({"group_options"}), "x").refuse("option_bounds", error)
    with pytest.raises(ValueError, match="unknown tolerated checks"):
        DialectSpec("x", lambda m: False, lambda m, c: None, tolerates={"anything"})  # type: ignore[arg-type,return-value]


jsonschema = pytest.importorskip("jsonschema")


@pytest.mark.parametrize(
    ("optimizer", "set_", "valid"),
    [
        ("SGD", {"weight_decay": 0, "lr_mult": 10, "decay_mult": 0}, True),
        ("SGD", {"weigth_decay": 0}, False),
        ("sgd", {"lr_mul": 10}, False),
        ("SGD", {"lars_exclude": True}, False),
        ("LARS", {"lars_exclude": True, "lr_mult": 2}, True),
        ("AdamW", {"betas": [0.9, 0.99], "eps": 1e-6}, True),
        ("AdamW", {"momentum": 0.9}, False),
    ],
)
def test_the_schema_checks_a_rules_options_against_the_optimizer(optimizer, set_, valid):
    schema = recipe_schema(optiplug.get_registry())
    data = {"optimizer": {"name": optimizer, "lr": 0.1}, "rules": [{"kind": "bias", "set": set_}]}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert (not errors) == valid, errors
