"""The canonical recipe: structuring, and errors that name the path, the value and the choices."""

from __future__ import annotations

import pytest

import optiplug
from optiplug.engine.structuring import parse_recipe, unstructure_recipe


def parse(data):
    return parse_recipe(data, optiplug.get_registry())


def errors(data) -> str:
    with pytest.raises(optiplug.ConfigError) as info:
        parse(data)
    return str(info.value)


def test_full_recipe_round_trips():
    data = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "rules": [
            {"kind": "norm", "set": {"weight_decay": 0.0}},
            {"kind": "regex", "pattern": "^head", "set": {"lr_mult": 10}},
        ],
        "schedules": {
            "lr": {
                "name": "composite",
                "schedulers": [
                    {"name": "linear", "start_value": 0.01, "end_value": 0.1},
                    {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
                ],
                "lengths": [0.1, 0.9],
                "interval_scaling": ["rescaled", "fixed"],
            },
            "weight_decay": {"name": "cosine", "start_value": 0.04, "end_value": 0.4, "update_interval": "epoch"},
        },
        "run": {"num_epochs": 10},
    }
    recipe = parse(data)
    assert recipe.optimizer.kwargs == {"lr": 0.1, "momentum": 0.9}
    assert recipe.schedules["lr"].params.schedulers[1].params.start_value == 0.1
    assert recipe.schedules["weight_decay"].update_interval == "epoch"
    assert recipe.rules[1].params.pattern == "^head"
    again = unstructure_recipe(recipe, optiplug.get_registry())
    assert again["schedules"] == data["schedules"]
    assert again["rules"] == data["rules"]
    assert parse(again) == recipe


def test_unknown_schedule_name_suggests_the_closest():
    message = errors({"schedules": {"lr": {"name": "cosin", "start_value": 1, "end_value": 0}}})
    assert message.startswith("schedules.lr.name: unknown schedule 'cosin' (did you mean 'cosine'?)")
    assert "; known: " in message and "composite, constant, cosine" in message


def test_unknown_key_suggests_the_closest():
    message = errors({"schedules": {"lr": {"name": "cosine", "strat_value": 1, "end_value": 0}}})
    assert "schedules.lr.strat_value: unknown key (did you mean 'start_value'?)" in message


def test_missing_key_is_named():
    assert "schedules.lr.end_value: required key missing" in errors(
        {"schedules": {"lr": {"name": "cosine", "start_value": 1}}}
    )


def test_every_problem_is_listed_with_its_path():
    message = errors(
        {
            "schedules": {"lr": {"name": "cosine", "start_value": "fast", "end_value": 0}},
            "rules": [{"kind": "regex", "pattern": 3}],
            "accumulation": {"steps": 0},
        }
    )
    assert message.startswith("3 problems in the config:")
    assert "schedules.lr.start_value: expected a number, got 'fast'" in message
    assert "rules[0].pattern: expected a string, got 3" in message
    assert "accumulation.steps: must be > 0, got 0" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "expected a number, got True"),
        (float("nan"), "expected a finite number, got nan"),
        ("inf", "expected a finite number"),
    ],
)
def test_numbers_are_strict(value, expected):
    assert expected in errors({"schedules": {"lr": {"name": "constant", "value": value}}})


def test_yaml_style_number_strings_are_numbers():
    recipe = parse({"schedules": {"lr": {"name": "constant", "value": "1e-08"}}})
    assert recipe.schedules["lr"].params.value == 1e-08


def test_nested_composite_errors_carry_the_full_path():
    message = errors(
        {
            "schedules": {
                "lr": {
                    "name": "composite",
                    "schedulers": [
                        {"name": "linear", "start_value": 0, "end_value": 1},
                        {"name": "cosine", "start_value": 1},
                    ],
                    "lengths": [0.5, 0.5],
                }
            }
        }
    )
    assert "schedules.lr.schedulers[1].end_value: required key missing" in message


def test_composite_checks_its_lengths():
    bad = {"name": "composite", "schedulers": [{"name": "constant", "value": 1}], "lengths": [0.5]}
    assert "schedules.lr.lengths: lengths must sum to 1" in errors({"schedules": {"lr": bad}})
    bad = {
        "name": "composite",
        "schedulers": [{"name": "constant", "value": 1}],
        "lengths": [1.0],
        "interval_scaling": ["fix"],
    }
    assert "schedules.lr.interval_scaling[0]: must be 'rescaled' or 'fixed', got 'fix'" in errors(
        {"schedules": {"lr": bad}}
    )


def test_lists_and_mappings_must_be_lists_and_mappings():
    assert "rules: expected a list, got 'norm'" in errors({"rules": "norm"})
    assert "schedules: expected a mapping, got [1]" in errors({"schedules": [1]})


def test_unknown_top_level_key():
    assert "schedule: unknown key (did you mean 'schedules'?)" in errors({"schedule": {}})


def test_update_interval_is_checked():
    message = errors({"schedules": {"lr": {"name": "constant", "value": 1, "update_interval": "epochs"}}})
    assert "schedules.lr.update_interval: must be 'step' or 'epoch', got 'epochs' (did you mean 'epoch'?)" in message


def test_rule_kind_and_options_are_checked():
    assert "rules[0].kind: unknown param rule kind 'norms' (did you mean 'norm'?)" in errors(
        {"rules": [{"kind": "norms"}]}
    )
    assert "rules[0].set.lr_mult: a multiplier must be a number >= 0, got -1" in errors(
        {"rules": [{"kind": "all", "set": {"lr_mult": -1}}]}
    )
    assert "rules[0]: takes no options, got ['pattern']" in errors({"rules": [{"kind": "bias", "pattern": "x"}]})


def test_not_a_mapping():
    with pytest.raises(optiplug.ConfigError, match="expected a mapping for the recipe, got list"):
        parse([1, 2])
