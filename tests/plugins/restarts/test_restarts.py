"""``restarts`` against SGDR/adamwr's formula computed here by walking the periods one by one."""

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


def ours(mapping, total, per_epoch, base=1.0, steps=None):
    clock = Clock(per_epoch, None if total is None else float(total))
    return evaluate(schedule(mapping), clock, optiplug.get_registry(), steps, base=base).tolist()


def cos_shape(u):
    return 0.5 * (1 + math.cos(math.pi * u))


def triangle(u, rising=0.5):
    return u / rising if u < rising else 1 - (u - rising) / (1 - rising)


def exact(period, t_mult):
    return [period * t_mult**i for i in range(500)]


def ceiled(period, t_mult):
    lengths = [math.ceil(period)]
    while len(lengths) < 500:
        lengths.append(math.ceil(lengths[-1] * t_mult))
    return lengths


def locate(lengths, x):
    start = 0.0
    for i, length in enumerate(lengths):
        if x < start + length - 1e-9:
            return i, start, length
        start += length
    raise AssertionError("too few periods")


def reference(k, *, unit, lengths, shape, low, peak, envelope=lambda i, k: 1.0, warmup=0.0, warmup_start=0.0):
    """The value at update k; unit = updates per period unit (steps_per_epoch, or the run's length)."""
    position = k / unit
    x = position - warmup
    if x < -1e-12:
        target = envelope(0, k) * shape(0.0)
        eta = warmup_start + (target - warmup_start) * position / warmup
    else:
        i, start, length = locate(lengths, x)
        eta = envelope(i, k) * shape((x - start) / length)
    return low + (peak - low) * eta


def compare(mapping, total, per_epoch, base=1.0, **ref):
    unit = ref.pop("unit", per_epoch)
    want = [reference(k, unit=unit, **ref) for k in range(total)]
    assert ours(mapping, total, per_epoch, base) == pytest.approx(want, rel=1e-11, abs=1e-14)


def test_exact_periods_with_float_t_mult_relative_to_the_group():
    mapping = {"name": "restarts", "period_epochs": 2, "t_mult": 1.5, "min_value": 1e-5}
    compare(mapping, 160, 4, base=0.3, lengths=exact(2, 1.5), shape=cos_shape, low=1e-5, peak=0.3)


def test_ceil_periods_as_adamwr():
    mapping = {"name": "restarts", "period_epochs": 1.5, "t_mult": 1.2, "rounding": "ceil"}
    compare(mapping, 150, 3, base=0.1, lengths=ceiled(1.5, 1.2), shape=cos_shape, low=0.0, peak=0.1)


def test_fraction_periods_with_warmup_absolute():
    mapping = {
        "name": "restarts",
        "period_fraction": 0.1,
        "t_mult": 2,
        "warmup_fraction": 0.05,
        "warmup_start": 0.1,
        "max_value": 0.5,
        "min_value": 0.001,
    }
    total = 200
    compare(
        mapping,
        total,
        7,
        base=9.9,
        unit=total,
        lengths=exact(0.1, 2),
        shape=cos_shape,
        low=0.001,
        peak=0.5,
        warmup=0.05,
        warmup_start=0.1,
    )


def test_triangular2_shape_with_peak_decay_and_exp_range_with_step_decay():
    tri2 = {"name": "restarts", "period_epochs": 1, "t_mult": 2, "peak_decay": 0.8, "shape": {"name": "triangular2"}}
    compare(
        tri2, 120, 4, lengths=exact(1, 2), shape=triangle, low=0.0, peak=1.0, envelope=lambda i, k: (0.5 * 0.8) ** i
    )
    exp = {
        "name": "restarts",
        "period_epochs": 2,
        "step_decay": 0.995,
        "shape": {"name": "exp_range", "gamma": 0.99, "triangular_step": 0.25},
    }
    compare(
        exp,
        120,
        4,
        lengths=exact(2, 1),
        shape=lambda u: triangle(u, 0.25),
        low=0.0,
        peak=1.0,
        envelope=lambda i, k: (0.99 * 0.995) ** k,
    )


def test_any_absolute_schedule_is_a_shape():
    mapping = {
        "name": "restarts",
        "period_epochs": 2,
        "t_mult": 2,
        "shape": {"name": "polynomial", "base_value": 1.0, "power": 2},
    }
    compare(mapping, 100, 5, lengths=exact(2, 2), shape=lambda u: (1 - u) ** 2, low=0.0, peak=1.0)


def test_epoch_warmup_rises_to_the_first_peak():
    mapping = {"name": "restarts", "period_epochs": 3, "warmup_epochs": 1, "min_value": 0.0}
    got = ours(mapping, 12, 4, base=0.2)
    assert got[:5] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert got[5] == pytest.approx(0.2 * cos_shape(1 / 12))


def test_first_update_of_each_period_is_the_peak():
    mapping = {"name": "restarts", "period_epochs": 1, "t_mult": 3, "rounding": "ceil", "peak_decay": 0.5}
    got = ours(mapping, None, 10, steps=[0, 9, 10, 39, 40, 129, 130])
    assert got[0] == 1.0 and got[2] == 0.5 and got[4] == 0.25 and got[6] == 0.125
    assert got[1] == pytest.approx(cos_shape(0.9)) and got[3] == pytest.approx(0.5 * cos_shape(29 / 30))


def test_open_ended_runs_work_with_epoch_periods():
    got = ours({"name": "restarts", "period_epochs": 2, "t_mult": 2}, None, 3, steps=[10**7])
    epochs = 10**7 / 3
    _, start, length = locate(exact(2, 2), epochs)
    assert got == pytest.approx([cos_shape((epochs - start) / length)], rel=1e-9)


def test_update_interval_epoch_holds_the_epoch_value():
    mapping = {"name": "restarts", "period_epochs": 2, "update_interval": "epoch"}
    got = ours(mapping, 12, 3)
    assert got == pytest.approx([cos_shape(e / 2) for e in (0, 0, 0, 1, 1, 1)] * 2)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


def test_resume_in_the_middle_of_a_period_continues_identically():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "restarts", "period_epochs": 1.5, "t_mult": 1.5, "warmup_epochs": 0.5}},
    }

    def run(built, steps):
        out = []
        for _ in range(steps):
            out.append(built.optimizer.param_groups[0]["lr"])
            built.optimizer.step()
            built.scheduler.step()
        return out

    whole = run(optiplug.build(config, model(), steps_per_epoch=4, num_epochs=10), 40)
    first = optiplug.build(config, model(), steps_per_epoch=4, num_epochs=10)
    head = run(first, 17)
    second = optiplug.build(config, model(), steps_per_epoch=4, num_epochs=10)
    second.load_state_dict(first.state_dict())
    assert head + run(second, 23) == whole


@pytest.mark.parametrize(
    ("mapping", "path", "words"),
    [
        ({"name": "restarts"}, "schedules.x.period_epochs", "period_epochs or period_fraction"),
        ({"name": "restarts", "period_epochs": 2, "period_fraction": 0.1}, "schedules.x.period_epochs", "not both"),
        ({"name": "restarts", "period_fraction": 0.1, "rounding": "ceil"}, "schedules.x.rounding", "period_epochs"),
        ({"name": "restarts", "period_epochs": 1, "rounding": "round"}, "schedules.x.rounding", "'round'"),
        (
            {"name": "restarts", "period_epochs": 1, "warmup_fraction": 0.1},
            "schedules.x.warmup_fraction",
            "warmup_epochs",
        ),
        ({"name": "restarts", "period_epochs": 1, "t_mult": 0}, "schedules.x.t_mult", "> 0"),
        ({"name": "restarts", "period_epochs": 1, "peak_decay": -1}, "schedules.x.peak_decay", "-1"),
        ({"name": "restarts", "period_epochs": 1, "warmup_start": 2}, "schedules.x.warmup_start", "2"),
        (
            {"name": "restarts", "period_epochs": 1, "shape": {"name": "triangel"}},
            "schedules.x.shape.name",
            "triangular",
        ),
        ({"name": "restarts", "period_epochs": 1, "t_mul": 2}, "schedules.x.t_mul", "t_mult"),
    ],
)
def test_config_errors_name_the_path(mapping, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        schedule(mapping)
    assert info.value.path == path
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("shape", "path", "words"),
    [
        ({"name": "triangular", "cycle_epochs": 2}, "shape.cycle_epochs", "on restarts itself"),
        ({"name": "cyclic_cosine", "min_value": 0.1}, "shape.min_value", "on restarts itself"),
        ({"name": "triangular", "update_interval": "epoch"}, "shape", "update_interval"),
        ({"name": "restarts", "period_epochs": 1}, "shape", "relative"),
    ],
)
def test_shape_errors_name_the_path(shape, path, words):
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "restarts", "period_epochs": 1, "shape": shape}},
    }
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model(), steps_per_epoch=4, num_epochs=3)
    assert info.value.path == f"schedules.lr.{path}"
    assert words in str(info.value)


def test_shrinking_exact_periods_must_outlast_the_run():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "restarts", "period_epochs": 2, "t_mult": 0.5}},
    }
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model(), steps_per_epoch=4, num_epochs=5)
    assert info.value.path == "schedules.lr.t_mult"
    assert "after 4 epochs" in str(info.value)
    built = optiplug.build(config, model(), steps_per_epoch=4, num_epochs=3)  # 2 + 1 + 0.5 ... covers 3 epochs
    assert built.optimizer.param_groups[0]["lr"] == 0.1


def test_fraction_periods_need_the_run_length():
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "restarts", "period_fraction": 0.2}},
    }
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(dict(config, run={"total_steps": None}), model(), steps_per_epoch=4)
    assert "run" in str(info.value)
