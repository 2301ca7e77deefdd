"""Contract of every registered config dialect.

A minimal config of the dialect (``EXAMPLES``; a new dialect must add one) is detected as
that dialect, translates to a canonical ``Recipe`` and builds an optimizer that trains.
``detect`` is cheap and never raises (docs/writing-plugins.md): on odd mappings it answers
a plain bool.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
import torch

import optiplug
from contract.support import NUM_EPOCHS, STEPS_PER_EPOCH, entry_point_names, make_model, train
from optiplug.plugin import DialectContext, Recipe, RunConfig

EXAMPLES: dict[str, dict[str, Any]] = {
    # examples/vissl/cosine.yaml, for a short run
    "vissl": {
        "OPTIMIZER": {
            "name": "sgd",
            "num_epochs": NUM_EPOCHS,
            "param_schedulers": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        }
    },
    # examples/mmcv/sgd.py, with an lr policy
    "mmcv": {
        "optimizer": {"type": "SGD", "lr": 0.01, "weight_decay": 0.0001},
        "lr_config": {"policy": "step", "step": [2]},
        "runner": {"type": "EpochBasedRunner", "max_epochs": NUM_EPOCHS},
    },
    # a minimal MMEngine config: optim_wrapper and a chain of schedulers (docs/plugins/mmengine.md)
    "mmengine": {
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.01, "weight_decay": 0.0001}},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 2},
            {"type": "CosineAnnealingLR", "eta_min": 0.0},
        ],
        "train_cfg": {"by_epoch": True, "max_epochs": NUM_EPOCHS},
    },
}

DIALECTS = entry_point_names("dialects")


class Odd(Mapping):
    """A read-only mapping that is not a dict, whose keys are not all strings."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


ODD_MAPPINGS: list[Any] = [
    {},
    {"optimizer": 3},
    {"optimizer": None},
    {"optimizer": "SGD"},
    {"optimizer": []},
    {"optimizer": {}},
    {"optimizer": {"type": None}},
    {"optimizer": {1: 2}},
    {"OPTIMIZER": None},
    {"OPTIMIZER": 3},
    {"OPTIMIZER": []},
    {"config": None},
    {"config": 3},
    {"config": "OPTIMIZER"},
    {"config": {"OPTIMIZER": None}},
    {"config": {"config": {}}},
    {None: None},
    {1: "optimizer", (2, 3): None},
    {"name": "sgd", "lr": float("nan")},
    {"schedules": {"lr": None}, "rules": 3},
    MappingProxyType({"optimizer": {"type": 3}}),
    Odd({"OPTIMIZER": {}, 5: []}),
    Odd({}),
]


def example_of(name: str) -> dict[str, Any]:
    if name not in EXAMPLES:
        pytest.fail(f"dialect {name!r} has no example: add a minimal config to EXAMPLES in {__file__}")
    return EXAMPLES[name]


def test_every_registered_dialect_has_an_example():
    missing = sorted(set(DIALECTS) - set(EXAMPLES))
    assert not missing, f"dialects without an example in EXAMPLES ({__file__}): {missing}"


def test_every_example_is_of_a_registered_dialect():
    stale = sorted(set(EXAMPLES) - set(DIALECTS))
    assert not stale, f"EXAMPLES holds dialects nobody registers: {stale}"


@pytest.mark.parametrize("name", DIALECTS)
def test_a_minimal_config_is_detected_as_its_dialect(name):
    registry = optiplug.get_registry()
    config = example_of(name)
    assert registry.dialects.get(name).detect(config) is True
    by_priority = sorted(registry.dialects, key=lambda p: -p.record.priority)
    detected = next(p.record.name for p in by_priority if p.record.detect(config))
    assert detected == name


@pytest.mark.parametrize("name", DIALECTS)
def test_a_minimal_config_translates_to_a_recipe(name):
    registry = optiplug.get_registry()
    context = DialectContext(registry, RunConfig(steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS))
    recipe = registry.dialects.get(name).translate(example_of(name), context)
    assert isinstance(recipe, Recipe)
    assert recipe.optimizer.name in registry.optimizers, recipe.optimizer


@pytest.mark.parametrize("name", DIALECTS)
def test_a_minimal_config_builds_and_trains(name):
    model = make_model()
    built = optiplug.build(example_of(name), model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS)
    forced = optiplug.build(
        example_of(name), make_model(), steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS, dialect=name
    )
    assert built.recipe == forced.recipe
    before = [p.detach().clone() for p in model.parameters()]
    train(built, model, range(3))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("mapping", ODD_MAPPINGS, ids=[repr(m)[:40] for m in ODD_MAPPINGS])
@pytest.mark.parametrize("name", DIALECTS)
def test_detect_never_raises_and_answers_a_bool(name, mapping):
    assert isinstance(optiplug.get_registry().dialects.get(name).detect(mapping), bool)


@pytest.mark.parametrize("name", DIALECTS)
def test_detect_does_not_claim_the_other_dialects_examples_or_a_canonical_recipe(name):
    detect = optiplug.get_registry().dialects.get(name).detect
    canonical = {"optimizer": {"name": "SGD", "lr": 0.1}, "schedules": {"lr": {"name": "constant", "value": 0.1}}}
    assert detect(canonical) is False
    for other, config in EXAMPLES.items():
        if other != name:
            assert detect(config) is False, f"{name} claims the {other} example"
