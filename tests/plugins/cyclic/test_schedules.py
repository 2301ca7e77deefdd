"""The cyclical schedules against CLR's / adamwr's formulas written out here, step by step."""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug.engine.schedules import evaluate
from optiplug.engine.structuring import parse_recipe
from optiplug.plugin_system.records import Clock


def schedule(mapping):
    return parse_recipe({"schedules": {"x": mapping}}, optiplug.get_registry()).schedules["x"]


def ours(mapping, total, per_epoch, base=1.0):
    return evaluate(schedule(mapping), Clock(per_epoch, float(total)), optiplug.get_registry(), base=base).tolist()


def cos_shape(u):
    return 0.5 * (1 + math.cos(math.pi * u))


def arccos_shape(u):
    return math.acos(max(-1.0, min(1.0, 2 * u - 1))) / math.pi


def triangle(u, rising):
    knee = rising
    return u / knee if u < knee else 1 - (u - knee) / (1 - knee)


SHAPES = {
    "cyclic_cosine": lambda u, c, k: cos_shape(u),
    "arccosine": lambda u, c, k: arccos_shape(u),
    "triangular": lambda u, c, k: triangle(u, 0.3),
    "triangular2": lambda u, c, k: 0.5**c * triangle(u, 0.3),
    "exp_range": lambda u, c, k: 0.97**k * triangle(u, 0.3),
}
OPTIONS = {"triangular": {"triangular_step": 0.3}, "triangular2": {"triangular_step": 0.3}}
OPTIONS["exp_range"] = {"triangular_step": 0.3, "gamma": 0.97}


def expected(name, total, per_epoch, cycle_epochs, low, peak):
    out = []
    for k in range(total):
        epochs = k / per_epoch
        cycle = math.floor(epochs / cycle_epochs + 1e-9)
        u = (epochs - cycle * cycle_epochs) / cycle_epochs
        out.append(low + (peak - low) * SHAPES[name](u, cycle, k))
    return out


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize(("per_epoch", "cycle_epochs"), [(4, 2), (5, 1.5), (3, 0.5)])
def test_relative_cycles_follow_the_formula(name, per_epoch, cycle_epochs):
    mapping = {"name": name, "cycle_epochs": cycle_epochs, "min_value": 1e-4, **OPTIONS.get(name, {})}
    total = 40
    got = ours(mapping, total, per_epoch, base=0.2)
    assert got == pytest.approx(expected(name, total, per_epoch, cycle_epochs, 1e-4, 0.2), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", list(SHAPES))
def test_absolute_with_cycle_fraction(name):
    mapping = {"name": name, "cycle_fraction": 0.25, "min_value": 0.01, "max_value": 0.5, **OPTIONS.get(name, {})}
    total, per_epoch = 60, 6  # 10 epochs; a quarter of the run is 2.5 epochs
    got = ours(mapping, total, per_epoch, base=123.0)  # the base is ignored when absolute
    assert got == pytest.approx(expected(name, total, per_epoch, 2.5, 0.01, 0.5), rel=1e-12)


def test_one_cycle_spans_the_run_and_ends_at_the_minimum():
    got = ours({"name": "cyclic_cosine", "min_value": 0.0}, 10, 2, base=1.0)
    assert got == pytest.approx([cos_shape(k / 10) for k in range(10)], rel=1e-12)
    end = evaluate(schedule({"name": "cyclic_cosine"}), Clock(2, 10.0), optiplug.get_registry(), [10.0]).tolist()
    assert end == [pytest.approx(0.0, abs=1e-15)]


def test_adamwr_arccosine_is_steeper_at_the_ends_than_the_cosine():
    u = 0.05
    assert 1 - arccos_shape(u) > 1 - cos_shape(u)


def test_upside_down_cycle_for_momentum():
    # max below min: 0.95 at the triangle's foot, 0.85 at its top (momentum against the lr)
    mapping = {"name": "triangular", "cycle_epochs": 1, "min_value": 0.95, "max_value": 0.85}
    assert ours(mapping, 4, 4) == pytest.approx([0.95, 0.9, 0.85, 0.9])


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


def test_through_build_each_group_peaks_at_its_own_lr():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "rules": [{"kind": "regex", "pattern": r"^1\.", "set": {"lr_mult": 10}}],
        "schedules": {"lr": {"name": "triangular2", "cycle_epochs": 1, "min_value": 0.001}},
    }
    built = optiplug.build(config, model(), steps_per_epoch=4, num_epochs=3)
    seen = []
    for _ in range(12):
        seen.append([g["lr"] for g in built.optimizer.param_groups])
        built.optimizer.step()
        built.scheduler.step()
    for k, lrs in enumerate(seen):
        cycle, u = divmod(k, 4)
        for lr, peak in zip(lrs, (0.1, 1.0), strict=True):
            assert lr == pytest.approx(0.001 + (peak - 0.001) * 0.5**cycle * triangle(u / 4, 0.5), rel=1e-12)


def test_inside_a_composite_after_a_warmup():
    parts = [
        {"name": "linear", "start_value": 0.0, "end_value": 0.4},
        {"name": "triangular", "max_value": 0.4, "min_value": 0.1, "cycle_fraction": 0.5},
    ]
    mapping = {"name": "composite", "schedulers": parts, "lengths": [0.2, 0.8]}
    got = ours(mapping, 20, 1)
    # the triangular part spans 16 steps, two cycles of 8 (cycle_fraction is of its own span)
    want = [0.4 * k / 4 for k in range(4)] + [0.1 + 0.3 * triangle((k % 8) / 8, 0.5) for k in range(16)]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("mapping", "path", "words"),
    [
        ({"name": "triangular", "cycle_epochs": 1, "cycle_fraction": 0.5}, "schedules.x.cycle_epochs", "not both"),
        ({"name": "triangular", "triangular_step": 1.5}, "schedules.x.triangular_step", "1.5"),
        ({"name": "exp_range", "gamma": -0.5}, "schedules.x.gamma", "-0.5"),
        ({"name": "arccosine", "cycle_epochs": 0}, "schedules.x.cycle_epochs", "> 0"),
        ({"name": "cyclic_cosine", "cycle_epoch": 2}, "schedules.x.cycle_epoch", "cycle_epochs"),
        ({"name": "triangle"}, "schedules.x.name", "triangular"),
    ],
)
def test_config_errors_name_the_path(mapping, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        schedule(mapping)
    assert info.value.path == path
    assert words in str(info.value)


def test_one_cycle_needs_the_run_length():
    config = {"optimizer": {"name": "sgd", "lr": 0.1}, "schedules": {"lr": {"name": "triangular"}}}
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model(), steps_per_epoch=4, num_epochs=None)
    assert "cycle_epochs" in str(info.value)


def test_mixing_relative_and_absolute_in_a_composite_is_refused():
    parts = [{"name": "linear", "start_value": 0.0, "end_value": 0.4}, {"name": "triangular"}]
    with pytest.raises(optiplug.ConfigError, match="relative and absolute"):
        ours({"name": "composite", "schedulers": parts, "lengths": [0.5, 0.5]}, 10, 1)


def test_lr_scaling_moves_the_peak():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "triangular", "cycle_epochs": 1}},
        "lr_scaling": {"base_batch_size": 64},
    }
    built = optiplug.build(config, model(), steps_per_epoch=4, num_epochs=2, batch_size_per_device=64, world_size=4)
    params = built.recipe.schedules["lr"].params
    assert params.max_value == pytest.approx(0.4)
    absolute = dict(
        config, schedules={"lr": {"name": "triangular", "cycle_epochs": 1, "min_value": 0.01, "max_value": 0.2}}
    )
    built = optiplug.build(absolute, model(), steps_per_epoch=4, num_epochs=2, batch_size_per_device=64, world_size=4)
    params = built.recipe.schedules["lr"].params
    assert (params.max_value, params.min_value) == (pytest.approx(0.4), pytest.approx(0.02))
