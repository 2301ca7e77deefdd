"""Batch-size lr scaling through the scaling rules, with the composite warmup rule D3 (spec 2.4)."""

from __future__ import annotations

import math

import attrs
import pytest

import optiplug
from optiplug.engine.run_figures import Batch
from optiplug.engine.scaling import scale_recipe
from optiplug.engine.structuring import unstructure_recipe

BASE = {
    "optimizer": {"name": "sgd", "lr": 0.3},
    "schedules": {
        "lr": {
            "name": "composite",
            "schedulers": [
                {"name": "linear", "start_value": 0.6, "end_value": 4.8},
                {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
            ],
            "lengths": [0.1, 0.9],
            "interval_scaling": ["rescaled", "fixed"],
        }
    },
}


def scaled(method, nodes, gpus, per_gpu, schedules=None):
    config = dict(BASE, lr_scaling={"base_batch_size": 256, "base_value": 0.3, "method": method})
    if schedules is not None:
        config["schedules"] = schedules
    registry = optiplug.get_registry()
    recipe = optiplug.to_recipe(config)
    recipe = scale_recipe(recipe, registry, Batch(per_gpu, nodes * gpus, gpus))
    return unstructure_recipe(recipe, registry)["schedules"]["lr"]


def cosine(start, end):
    return {
        "name": "cosine",
        "start_value": pytest.approx(start, rel=1e-12),
        "end_value": pytest.approx(end, rel=1e-12),
    }


@pytest.mark.parametrize(
    ("method", "nodes", "gpus", "per_gpu", "expected"),
    [
        ("linear", 1, 8, 32, cosine(0.3, 0.0003)),
        ("linear", 1, 8, 64, cosine(0.6, 0.0006)),
        ("linear", 1, 1, 32, cosine(0.0375, 3.75e-05)),
        ("sqrt", 1, 8, 16, cosine(0.3 * math.sqrt(0.5), 0.3 * math.sqrt(0.5) / 1000)),
        # VISSL keeps a falling 0.6 -> 0.424264 ramp here; D3 removes it (one node).
        ("sqrt", 1, 8, 64, cosine(0.3 * math.sqrt(2), 0.3 * math.sqrt(2) / 1000)),
        # two nodes, but the ramp would not rise (0.6 -> 0.6): removed too.
        ("sqrt", 2, 8, 64, cosine(0.6, 0.0006)),
    ],
)
def test_warmup_removed(method, nodes, gpus, per_gpu, expected):
    assert scaled(method, nodes, gpus, per_gpu) == expected


@pytest.mark.parametrize(
    ("method", "nodes", "gpus", "per_gpu", "start", "peak"),
    [("linear", 2, 8, 32, 0.3, 0.6), ("sqrt", 4, 8, 64, 0.6, 0.3 * math.sqrt(8)), ("linear", 8, 8, 64, 0.6, 4.8)],
)
def test_warmup_kept_on_several_nodes(method, nodes, gpus, per_gpu, start, peak):
    lr = scaled(method, nodes, gpus, per_gpu)
    assert lr["name"] == "composite"
    assert lr["lengths"] == [0.1, 0.9]
    linear, cos = lr["schedulers"]
    assert (linear["start_value"], linear["end_value"]) == (pytest.approx(start), pytest.approx(peak))
    assert (cos["start_value"], cos["end_value"]) == (pytest.approx(peak), pytest.approx(peak / 1000))


def test_two_parts_left_inherit_the_removed_length():
    schedules = {
        "lr": {
            "name": "composite",
            "schedulers": [
                {"name": "linear", "start_value": 0.6, "end_value": 4.8},
                {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
                {"name": "linear", "start_value": 0.0048, "end_value": 2.114},
                {"name": "cosine", "start_value": 2.114, "end_value": 0.0048},
            ],
            "lengths": [0.0256, 0.48722, 0.0256, 0.46166],
            "interval_scaling": ["rescaled", "rescaled", "rescaled", "rescaled"],
        }
    }
    lr = scaled("linear", 1, 8, 32, schedules)
    assert [s["name"] for s in lr["schedulers"]] == ["linear", "cosine", "cosine"]
    assert lr["lengths"] == pytest.approx([0.0256, 0.48722, 0.0256 + 0.46166])
    assert lr["schedulers"][0]["start_value"] == lr["schedulers"][0]["end_value"] == pytest.approx(0.3)
    # every non-linear part starts at the scaled value (VISSL raises the second peak too)
    assert lr["schedulers"][2]["start_value"] == pytest.approx(0.3)


def test_multistep_rule_rounds_like_vissl():
    schedules = {"lr": {"name": "multistep", "values": [0.1, 0.01, 0.005, 1e-9], "milestones": [1, 2, 3]}}
    config = dict(BASE, schedules=schedules, lr_scaling={"base_batch_size": 256, "base_value": 0.3})
    recipe = scale_recipe(optiplug.to_recipe(config), optiplug.get_registry(), Batch(256))
    assert recipe.schedules["lr"].params.values == [0.3, 0.03, 0.003, 0.0003]


def test_without_a_schedule_the_optimizer_lr_is_scaled(conv_bn_head):
    config = {"optimizer": {"name": "sgd", "lr": 0.1}, "lr_scaling": {"base_batch_size": 256, "method": "sqrt"}}
    built = optiplug.build(config, conv_bn_head, batch_size_per_device=64, world_size=16)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)


def test_a_schedule_without_a_rule_is_refused(conv_bn_head):
    @optiplug.register_schedule("flat")
    @attrs.frozen
    class Flat:
        def values(self, steps):
            return steps * 0 + 0.1

    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "flat"}},
        "lr_scaling": {"base_batch_size": 256},
    }
    with pytest.raises(optiplug.ConfigError, match="schedules.lr: schedule 'flat' has no lr scaling rule"):
        optiplug.build(config, conv_bn_head, steps_per_epoch=1, num_epochs=1)


def test_cosine_from_zero_cannot_be_scaled(conv_bn_head):
    config = {
        "optimizer": {"name": "sgd"},
        "schedules": {"lr": {"name": "cosine", "start_value": 0, "end_value": 1}},
        "lr_scaling": {"base_batch_size": 256, "base_value": 0.1},
    }
    with pytest.raises(optiplug.ConfigError, match="schedules.lr: cannot scale a cosine that starts at 0"):
        optiplug.build(config, conv_bn_head, steps_per_epoch=1, num_epochs=1)
