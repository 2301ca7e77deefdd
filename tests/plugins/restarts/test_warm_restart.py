"""VISSL's ``cosine_warm_restart`` against a table of its values and a step-by-step reference using numpy's arange."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optiplug
from optiplug.engine.schedules import evaluate
from optiplug.engine.structuring import parse_recipe
from optiplug.plugin_system.records import Clock
from optiplug_restarts.warm_restart import restart_points

WHERE = [0, 0.25, 0.49, 0.5, 0.6, 0.75, 0.99]
TOTAL = 100  # the table's w are multiples of 1/100


def values(**options):
    mapping = {"name": "cosine_warm_restart", "start_value": 0.15, "end_value": 0.00015, **options}
    config = parse_recipe({"schedules": {"lr": mapping}}, optiplug.get_registry()).schedules["lr"]
    steps = [w * TOTAL for w in WHERE]
    return evaluate(config, Clock(10, float(TOTAL)), optiplug.get_registry(), steps).tolist()


def test_half_waves_with_multiplier_table():
    want = [0.15, 0.075075, 0.000298, 0.075, 0.067852, 0.037575, 0.000224]
    assert values(restart_interval_length=0.5, wave_type="half", lr_multiplier=0.5) == pytest.approx(want, abs=5e-7)


def test_full_waves_with_multiplier_table():
    want = [0.15, 0.022345, 0.03371, 0.037223, 0.067602, 0.064409, 0.000388]
    assert values(restart_interval_length=0.334, wave_type="full", lr_multiplier=0.5) == pytest.approx(want, abs=5e-7)


def test_adaptive_half_peaks_table():
    # peaks [0.15, 0.119115, 0.051922, 0.003817] at the restart points 0, 0.3, 0.6, 0.9
    got = values(restart_interval_length=0.3, wave_type="half", is_adaptive=True)
    mapping = {"name": "cosine_warm_restart", "start_value": 0.15, "end_value": 0.00015}
    mapping |= {"restart_interval_length": 0.3, "is_adaptive": True}
    config = parse_recipe({"schedules": {"lr": mapping}}, optiplug.get_registry()).schedules["lr"]
    at_restarts = evaluate(config, Clock(10, 1000.0), optiplug.get_registry(), [0, 300, 600, 900]).tolist()
    assert at_restarts == pytest.approx([0.15, 0.119115, 0.051922, 0.003817], abs=5e-7)
    assert got[0] == pytest.approx(0.15)


def test_adaptive_full_first_peak_is_already_reduced():
    # L = 0.334 gives 0.112402 instead of 0.15 for full waves
    got = values(restart_interval_length=0.334, wave_type="full", is_adaptive=True)
    assert got[0] == pytest.approx(0.112402, abs=5e-7)


def reference(w, s, e, length, wave, multiplier):
    """VISSL's formula, step by step, with numpy's arange for the restart points."""
    step = length if wave == "half" else 2 * length
    points = [0.0, *np.arange(length, 1.0, step).tolist()]
    index = max(sum(1 for p in points if p <= w) - 1, 0)
    peak = s * multiplier**index
    u = (w % length) / length if wave == "half" else w / length
    return e + 0.5 * (peak - e) * (1 + math.cos(math.pi * u))


@pytest.mark.parametrize("wave", ["half", "full"])
@pytest.mark.parametrize("length", [0.1, 0.15, 0.2, 0.3, 1 / 3, 0.7, 1.5])
def test_every_step_against_the_formula(wave, length):
    total = 97
    mapping = {"name": "cosine_warm_restart", "start_value": 2.0, "end_value": 0.1}
    mapping |= {"restart_interval_length": length, "wave_type": wave, "lr_multiplier": 0.7}
    config = parse_recipe({"schedules": {"lr": mapping}}, optiplug.get_registry()).schedules["lr"]
    got = evaluate(config, Clock(1, float(total)), optiplug.get_registry()).tolist()
    want = [reference(k / total, 2.0, 0.1, length, wave, 0.7) for k in range(total)]
    assert got == pytest.approx(want, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("length", [0.1, 0.15, 0.3, 1 / 3, 0.334, 0.5, 0.9, 1.0, 2.0])
@pytest.mark.parametrize("wave", ["half", "full"])
def test_restart_points_are_numpy_arange(length, wave):
    step = length if wave == "half" else 2 * length
    assert restart_points(length, wave) == [0.0, *np.arange(length, 1.0, step).tolist()]


def model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_scaling_rule_keeps_the_ratio_vissl_vector():
    # cosine_warm_restart 0.15 -> 0.00015 on 8 x 8 x 64 (base batch 256): start 2.4, end 0.0024
    config = {
        "optimizer": {"name": "sgd", "lr": 0.15},
        "schedules": {
            "lr": {
                "name": "cosine_warm_restart",
                "start_value": 0.15,
                "end_value": 0.00015,
                "restart_interval_length": 0.5,
            }
        },
        "lr_scaling": {"base_batch_size": 256, "base_value": 0.15},
        "run": {"devices_per_node": 8},
    }
    built = optiplug.build(config, model(), steps_per_epoch=10, num_epochs=2, batch_size_per_device=64, world_size=64)
    params = built.recipe.schedules["lr"].params
    assert (params.start_value, params.end_value) == (pytest.approx(2.4), pytest.approx(0.0024))
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(2.4)


def test_scaling_a_zero_start_is_refused():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.15},
        "schedules": {
            "lr": {"name": "cosine_warm_restart", "start_value": 0, "end_value": 0.1, "restart_interval_length": 0.5}
        },
        "lr_scaling": {"base_batch_size": 256},
    }
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model(), steps_per_epoch=10, num_epochs=2, batch_size_per_device=64)
    assert info.value.path == "schedules.lr"
    assert "starts at 0" in str(info.value)


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"restart_interval_length": 0.5, "wave_type": "quarter"}, "wave_type", "'quarter'"),
        ({"restart_interval_length": 0}, "restart_interval_length", "> 0"),
        ({}, "restart_interval_length", "required"),
        ({"restart_interval_length": 0.5, "lr_multiplier": -1}, "lr_multiplier", "-1"),
        ({"restart_interval_length": 0.5, "is_adaptive": "yes"}, "is_adaptive", "'yes'"),
    ],
)
def test_config_errors_name_the_path(options, path, words):
    mapping = {"name": "cosine_warm_restart", "start_value": 0.1, "end_value": 0.0, **options}
    with pytest.raises(optiplug.ConfigError) as info:
        parse_recipe({"schedules": {"lr": mapping}}, optiplug.get_registry())
    assert info.value.path == f"schedules.lr.{path}"
    assert words in str(info.value)


def test_needs_the_run_length():
    mapping = {"name": "cosine_warm_restart", "start_value": 0.1, "end_value": 0.0, "restart_interval_length": 0.5}
    config = parse_recipe({"schedules": {"lr": mapping}}, optiplug.get_registry()).schedules["lr"]
    with pytest.raises(optiplug.ConfigError, match="length of the run"):
        evaluate(config, Clock(10, None), optiplug.get_registry(), [0])
