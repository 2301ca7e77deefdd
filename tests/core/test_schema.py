"""The recipe's JSON Schema: generated from the attrs classes and the live registry."""

from __future__ import annotations

import copy
from typing import Literal

import attrs
import pytest
import torch
import yaml

import optiplug
from optiplug.recipe.validators import help_field
from optiplug.tooling.recipes import recipe_path
from optiplug.tooling.schema import recipe_schema

jsonschema = pytest.importorskip("jsonschema")

FULL_RECIPE = {
    "optimizer": {"name": "SGD", "lr": "1e-1", "momentum": 0.9, "weight_decay": 1.0e-4},
    "rules": [
        {"kind": "norm", "set": {"weight_decay": 0}, "label": "norms"},
        {
            "kind": "regex",
            "pattern": r"^head\.",
            "set": {"lr_mult": 10},
            "schedules": {"momentum": {"name": "constant", "value": 0.8}},
        },
        {"kind": "ndim", "max": 1},
        {"kind": "module_type", "types": ["Embedding"]},
    ],
    "schedules": {
        "lr": {
            "name": "composite",
            "schedulers": [
                {"name": "linear", "start_value": "1e-3", "end_value": 0.1},
                {"name": "multistep", "values": [0.1, 0.01], "milestones": [30], "update_interval": "epoch"},
            ],
            "lengths": [0.1, 0.9],
            "interval_scaling": ["rescaled", "fixed"],
        }
    },
    "lr_scaling": {"base_batch_size": 256, "method": "sqrt"},
    "clip": {"max_norm": 1.0},
    "accumulation": {"steps": 2, "schedule_clock": "iterations"},
    "run": {"num_epochs": 90, "steps_per_epoch": 500, "batch_size_per_device": 32, "world_size": 8},
}


@pytest.fixture
def validator():
    schema = recipe_schema(optiplug.get_registry())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(validator, data):
    """(path, keyword) of every error, with those inside oneOf/anyOf branches."""

    def walk(errors):
        for error in errors:
            yield list(error.absolute_path), error.validator
            yield from walk(error.context or ())

    return sorted(walk(validator.iter_errors(data)))


def test_the_default_recipe_is_valid(validator):
    assert problems(validator, yaml.safe_load(recipe_path().read_text())) == []


def test_a_recipe_using_every_section_is_valid_and_builds(validator):
    assert problems(validator, FULL_RECIPE) == []
    optiplug.to_recipe(FULL_RECIPE)  # the schema accepts only what the parser accepts here


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r["schedules"]["lr"].update(name="cosin"), ["schedules", "lr"]),
        (lambda r: r["schedules"]["lr"]["schedulers"][0].update(start_valu=1), ["schedules", "lr", "schedulers", 0]),
        (
            lambda r: r["schedules"]["lr"]["schedulers"][0].update(start_value="fast"),
            ["schedules", "lr", "schedulers", 0],
        ),
        (lambda r: r["schedules"]["lr"].update(update_interval="hour"), ["schedules", "lr"]),
        (lambda r: r["rules"][0].update(kind="norms"), ["rules", 0]),
        (lambda r: r["rules"][1].update(pattern=3), ["rules", 1]),
        (lambda r: r["optimizer"].update(name="sgdd"), ["optimizer", "name"]),
        (lambda r: r["optimizer"].pop("name"), ["optimizer"]),
        (lambda r: r["run"].update(num_epochs=1.5), ["run", "num_epochs"]),
        (lambda r: r["clip"].update(max_nrom=1), ["clip"]),
        (lambda r: r.update(schedule={}), []),
    ],
)
def test_mistakes_the_parser_refuses_are_refused(validator, change, where):
    recipe = copy.deepcopy(FULL_RECIPE)
    change(recipe)
    found = problems(validator, recipe)
    assert found, "the schema accepted a broken recipe"
    assert any(path == where for path, _ in found), found
    with pytest.raises(optiplug.ConfigError):
        optiplug.build(recipe, torch.nn.Linear(2, 2), steps_per_epoch=10, num_epochs=3)


def test_every_registered_kind_is_a_branch():
    registry = optiplug.get_registry()
    schema = recipe_schema(registry)
    defs = schema["$defs"]

    def selectors(definition, key):
        return {b["properties"][key].get("const") for b in defs[definition]["oneOf"]}

    assert selectors("Schedule", "name") == set(registry.schedules.names())
    assert selectors("Rule", "kind") == set(registry.rules.names())
    assert selectors("Wrapper", "name") == set(registry.wrappers.names())
    assert {"SGD", "sgd", "AdamW", "adamw"} <= set(defs["Optimizer"]["properties"]["name"]["enum"])


def test_help_texts_types_and_defaults_come_from_the_attrs_fields():
    schema = recipe_schema(optiplug.get_registry())
    defs = schema["$defs"]
    help_of = attrs.fields(optiplug.Recipe).schedules.metadata["help"]
    assert schema["properties"]["schedules"]["description"] == help_of
    steps = defs["AccumulationConfig"]["properties"]["steps"]
    assert steps["type"] == "integer" and steps["default"] == 1
    assert steps["description"] == "Micro-batches per update."
    cosine = next(b for b in defs["Schedule"]["oneOf"] if b["properties"]["name"].get("const") == "cosine")
    assert cosine["required"] == ["name", "start_value", "end_value"]
    assert cosine["properties"]["start_value"]["$ref"] == "#/$defs/Number"
    assert cosine["properties"]["update_interval"]["enum"] == ["step", "epoch"]
    composite = next(b for b in defs["Schedule"]["oneOf"] if b["properties"]["name"].get("const") == "composite")
    assert composite["properties"]["schedulers"]["items"] == {"$ref": "#/$defs/Schedule"}
    assert schema["properties"]["lr_scaling"]["anyOf"] == [{"$ref": "#/$defs/ScalingConfig"}, {"type": "null"}]


def test_a_user_schedule_appears_with_its_fields():
    @optiplug.register_schedule("warm_hold", description="hold then warm")
    @attrs.frozen
    class WarmHold:
        """A user schedule."""

        value: float = help_field("The value held.")
        mode: Literal["hold", "warm"] = help_field("What to do.", default="hold")
        steps: tuple[int, int] = help_field("Two step counts.", default=(1, 2))

        def values(self, steps):
            return torch.full_like(steps, self.value)

    schema = recipe_schema(optiplug.get_registry())
    branch = next(
        b for b in schema["$defs"]["Schedule"]["oneOf"] if b["properties"]["name"].get("const") == "warm_hold"
    )
    assert branch["description"] == "hold then warm"
    assert branch["title"] == "warm_hold (user plugin)"
    assert branch["properties"]["mode"] == {"enum": ["hold", "warm"], "description": "What to do.", "default": "hold"}
    assert branch["properties"]["steps"]["prefixItems"] == [{"type": "integer"}, {"type": "integer"}]
    assert branch["properties"]["steps"]["default"] == [1, 2]
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors({"schedules": {"lr": {"name": "warm_hold", "value": 0.1, "mode": "warm"}}}))
    assert list(validator.iter_errors({"schedules": {"lr": {"name": "warm_hold", "value": 0.1, "mode": "cold"}}}))


def test_field_help_lists_each_field_with_type_default_and_help():
    from optiplug.recipe.model import ClipConfig, RunConfig
    from optiplug.tooling.schema import FieldHelp, field_help

    clip = field_help(ClipConfig)
    assert clip[0] == FieldHelp("max_norm", "float | None", "None", "Clip the total gradient norm to this value.")
    assert [row.name for row in clip] == [f.name for f in attrs.fields(ClipConfig)]
    composite = field_help(optiplug.get_registry().schedules.get("composite").config_class)
    assert composite[0].name == "schedulers" and composite[0].default is None  # required
    assert composite[0].type == "list[ScheduleConfig]"  # module paths dropped
    assert field_help(None) == [] and field_help(int) == []
    assert all(row.help for row in field_help(RunConfig))  # every field says what it is


def test_type_text_reads_like_the_annotation():
    from typing import Any

    from optiplug.recipe.model import RuleConfig
    from optiplug.tooling.schema import type_text

    assert type_text(float) == "float"
    assert type_text(RuleConfig | None) == "RuleConfig | None"
    assert type_text(dict[str, Any]) == "dict[str, Any]"
    assert type_text(tuple[float, float]) == "tuple[float, float]"
    assert type_text(type(None)) == "None"
