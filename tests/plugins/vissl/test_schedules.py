"""VISSL schedules through ``optiplug.build``: per-update values against fvcore run the way
VISSL's loop runs it (spec 3.5), and against the verified tables of spec 3.2-3.5."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fvcore.common import param_scheduler as fv

import optiplug

EPOCHS, PER_EPOCH = 4, 5


def build(lr: dict, model, *, epochs: int = EPOCHS, per_epoch: int = PER_EPOCH, **extra):
    config = {"OPTIMIZER": {"num_epochs": epochs, "param_schedulers": {"lr": lr, **extra}}}
    return optiplug.build(config, model, steps_per_epoch=per_epoch)


def first_group(values):
    return values[0]


# -- spec 3.5: the VISSL loop table (4 epochs x 5 steps, verified against the reference code) ------------------


def test_multistep_epoch_interval_table(small, per_update):
    lr = {"name": "multistep", "values": [0.1, 0.01, 0.001], "milestones": [2, 3]}
    got = first_group(per_update(build(lr, small)))
    assert got == pytest.approx([0.1] * 10 + [0.01] * 5 + [0.001] * 5, rel=1e-12)


def test_cosine_step_interval_table(small, per_update):
    got = first_group(
        per_update(build({"name": "cosine", "start_value": 0.1, "end_value": 0.0, "update_interval": "step"}, small))
    )
    assert got[:6] == pytest.approx([0.1, 0.099384, 0.097553, 0.09455, 0.090451, 0.085355], abs=1e-6)
    assert got[-2:] == pytest.approx([0.002447, 0.000616], abs=1e-6)


@pytest.mark.parametrize(
    ("modes", "expected_head", "at_5"),
    [
        (["rescaled", "fixed"], [0.01, 0.028, 0.046, 0.064, 0.082], 0.085355),
        (["rescaled", "rescaled"], [0.01, 0.028, 0.046, 0.064, 0.082], 0.1),
    ],
)
def test_composite_warmup_table(small, per_update, modes, expected_head, at_5):
    lr = {
        "name": "composite",
        "schedulers": [
            {"name": "linear", "start_value": 0.01, "end_value": 0.1},
            {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
        ],
        "lengths": [0.25, 0.75],
        "interval_scaling": modes,
        "update_interval": "step",
    }
    got = first_group(per_update(build(lr, small)))
    assert got[:5] == pytest.approx(expected_head, abs=1e-9)
    assert got[5] == pytest.approx(at_5, abs=1e-6)


def test_lr_defaults_to_epoch_interval(small, per_update):
    """VISSL's defaults.yaml gives every lr ``update_interval: epoch``: a cosine is a staircase (spec 3.4)."""
    got = first_group(per_update(build({"name": "cosine", "start_value": 0.1, "end_value": 0.0}, small)))
    assert got[::PER_EPOCH] == pytest.approx([0.1, 0.085355, 0.05, 0.014645], abs=1e-6)
    assert all(got[e * PER_EPOCH : (e + 1) * PER_EPOCH] == [got[e * PER_EPOCH]] * PER_EPOCH for e in range(EPOCHS))


def test_classy_vision_hook_vectors(small, per_update):
    """ClassyVision's step-vs-epoch conformance test: 3 epochs x 2 steps, lr f(w)=w (step), wd f(w)=2w (epoch)."""
    built = build(
        {"name": "linear", "start_value": 0.0, "end_value": 1.0, "update_interval": "step"},
        small,
        epochs=3,
        per_epoch=2,
        weight_decay={"name": "linear", "start_value": 0.0, "end_value": 2.0, "update_interval": "epoch"},
    )
    linear_weight = small[0].weight
    regularized = next(
        i for i, g in enumerate(built.optimizer.param_groups) if any(p is linear_weight for p in g["params"])
    )
    rows_lr, rows_wd = [], []
    for _ in range(6):
        rows_lr.append(built.optimizer.param_groups[regularized]["lr"])
        rows_wd.append(built.optimizer.param_groups[regularized]["weight_decay"])
        built.optimizer.step()
        built.scheduler.step()
    assert rows_lr == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6], abs=1e-12)
    assert rows_wd == pytest.approx([0, 0, 4 / 6, 4 / 6, 8 / 6, 8 / 6], abs=1e-12)


# -- against fvcore, the reference package --------------------------------------------------------------------

FVCORE_CASES = [
    ({"name": "constant", "value": 0.3}, lambda: fv.ConstantParamScheduler(0.3)),
    ({"name": "linear", "start_value": 0.01, "end_value": 0.2}, lambda: fv.LinearParamScheduler(0.01, 0.2)),
    ({"name": "cosine", "start_value": 0.15, "end_value": 0.0}, lambda: fv.CosineParamScheduler(0.15, 0.0)),
    ({"name": "polynomial", "base_value": 0.1, "power": 2.0}, lambda: fv.PolynomialDecayParamScheduler(0.1, 2.0)),
    ({"name": "step", "values": [0.1, 0.01, 0.001]}, lambda: fv.StepParamScheduler(7, [0.1, 0.01, 0.001])),
    (
        {"name": "step_with_fixed_gamma", "base_value": 0.1, "num_decays": 2, "gamma": 0.1},
        lambda: fv.StepWithFixedGammaParamScheduler(0.1, 2, 0.1, 7),
    ),
    (
        {"name": "multistep", "values": [0.1, 0.01, 0.001], "milestones": [2, 5]},
        lambda: fv.MultiStepParamScheduler([0.1, 0.01, 0.001], num_updates=7, milestones=[2, 5]),
    ),
    (
        {"name": "multistep", "values": [0.1, 0.01, 0.001], "milestones": None},
        lambda: fv.MultiStepParamScheduler([0.1, 0.01, 0.001], num_updates=7),
    ),
]


@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize(
    ("lr", "reference"), FVCORE_CASES, ids=[f"{c[0]['name']}{i}" for i, c in enumerate(FVCORE_CASES)]
)
def test_equal_to_fvcore_in_vissls_loop(small, per_update, loop, lr, reference, interval):
    epochs, per_epoch = 7, 3
    mapping = {k: v for k, v in lr.items() if v is not None} | {"update_interval": interval}
    if lr.get("milestones", 1) is None:
        mapping["milestones"] = None  # the schedule's own default (evenly spaced), not VISSL's [30, 60]
    got = first_group(per_update(build(mapping, small, epochs=epochs, per_epoch=per_epoch)))
    assert got == pytest.approx(loop(reference(), interval, epochs, per_epoch), rel=1e-9, abs=1e-15)


def test_composite_multistep_part_reads_milestones_on_its_own_timescale(small, per_update, loop):
    """Spec 3.3: [constant 1, multistep [1, 0.1] at 5] over [0.5, 0.5], 10 epochs: the switch is at w = 0.75."""
    lr = {
        "name": "composite",
        "schedulers": [
            {"name": "constant", "value": 1.0},
            {"name": "multistep", "values": [1.0, 0.1], "milestones": [5]},
        ],
        "lengths": [0.5, 0.5],
        "interval_scaling": ["rescaled", "rescaled"],
        "update_interval": "step",
    }
    got = first_group(per_update(build(lr, small, epochs=10, per_epoch=2)))
    assert got.index(0.1) == 15  # 15 / 20 = 0.75
    reference = fv.CompositeParamScheduler(
        [fv.ConstantParamScheduler(1.0), fv.MultiStepParamScheduler([1.0, 0.1], num_updates=10, milestones=[5])],
        lengths=[0.5, 0.5],
        interval_scaling=["rescaled", "rescaled"],
    )
    assert got == pytest.approx(loop(reference, "step", 10, 2), rel=1e-12)


def test_seed_linear_warmup_cosine_against_fvcore(examples, small, per_update, loop):
    built = optiplug.build(examples / "linear_warmup_cosine.yaml", small, steps_per_epoch=7, num_epochs=10)
    reference = fv.CompositeParamScheduler(
        [fv.LinearParamScheduler(0.6, 4.8), fv.CosineParamScheduler(4.8, 0.0048)],
        lengths=[0.1, 0.9],
        interval_scaling=["rescaled", "fixed"],
    )
    assert first_group(per_update(built)) == pytest.approx(loop(reference, "step", 10, 7), rel=1e-9)


def test_seed_multiple_warmups_against_fvcore(examples, small, per_update, loop):
    """The example without ``name: composite`` (decision D2)."""
    built = optiplug.build(examples / "multiple_linear_warmups_cosine.yaml", small, steps_per_epoch=50, num_epochs=4)
    reference = fv.CompositeParamScheduler(
        [
            fv.LinearParamScheduler(0.6, 4.8),
            fv.CosineParamScheduler(4.8, 0.0048),
            fv.LinearParamScheduler(0.0048, 2.114),
            fv.CosineParamScheduler(2.114, 0.0048),
        ],
        lengths=[0.0256, 0.48722, 0.0256, 0.46166],
        interval_scaling=["rescaled"] * 4,
    )
    assert first_group(per_update(built)) == pytest.approx(loop(reference, "step", 4, 50), rel=1e-9)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("cosine.yaml", lambda: fv.CosineParamScheduler(0.15, 0.0)),
        ("multistep.yaml", lambda: fv.MultiStepParamScheduler([0.01, 0.001], num_updates=90, milestones=[1])),
        ("optimizer.yaml", lambda: fv.MultiStepParamScheduler([0.1, 0.01, 0.001], num_updates=90, milestones=[30, 60])),
    ],
)
def test_seed_epoch_examples_against_fvcore(examples, small, per_update, loop, name, reference):
    """Examples without update_interval update once per epoch (VISSL's default); num_epochs 90 by default."""
    built = optiplug.build(examples / name, small, steps_per_epoch=2)
    assert first_group(per_update(built)) == pytest.approx(loop(reference(), "epoch", 90, 2), rel=1e-9)


# -- VISSL's own schedules (spec 3.2), from their formulas --------------------------------------------------------


def warm_restart(start, end, length, wave, multiplier=1.0, adaptive=False):
    """VISSL's CosineWarmRestartScheduler written from spec 3.2."""
    step = length if wave == "half" else 2 * length
    restarts = [0.0, *np.arange(length, 1.0, step).tolist()]

    def peak(i):
        if not adaptive:
            return start * multiplier**i
        shift = restarts[i] if wave == "half" else length + restarts[i]
        return end + 0.5 * (start - end) * (1 + math.cos(math.pi * shift))

    def value(w):
        i = max(int(np.searchsorted(restarts, w, side="right")) - 1, 0)
        u = (w % length) / length if wave == "half" else w / length
        return end + 0.5 * (peak(i) - end) * (1 + math.cos(math.pi * u))

    return value


WARM = {"start_value": 0.15, "end_value": 0.00015}
TABLE_STEPS = [0, 25, 49, 50, 60, 75, 99]  # w = 0, .25, .49, .5, .6, .75, .99 over 100 updates


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"wave_type": "half", "restart_interval_length": 0.5, "lr_multiplier": 0.5},
            [0.15, 0.075075, 0.000298, 0.075, 0.067852, 0.037575, 0.000224],
        ),
        (
            {"wave_type": "full", "restart_interval_length": 0.334, "lr_multiplier": 0.5},
            [0.15, 0.022345, 0.03371, 0.037223, 0.067602, 0.064409, 0.000388],
        ),
    ],
)
def test_cosine_warm_restart_verified_table(small, per_update, loop, options, expected):
    lr = {"name": "cosine_warm_restart", **WARM, **options, "update_interval": "step"}
    got = first_group(per_update(build(lr, small, epochs=10, per_epoch=10)))
    assert [got[k] for k in TABLE_STEPS] == pytest.approx(expected, abs=1e-6)
    formula = warm_restart(
        0.15, 0.00015, options["restart_interval_length"], options["wave_type"], options["lr_multiplier"]
    )
    assert got == pytest.approx(loop(formula, "step", 10, 10), rel=1e-9)


def test_cosine_warm_restart_adaptive_peaks(small, per_update):
    """half, L 0.3, adaptive: peaks 0.15, 0.119115, 0.051922, 0.003817 at the restarts 0, .3, .6, .9."""
    lr = {
        "name": "cosine_warm_restart",
        **WARM,
        "wave_type": "half",
        "restart_interval_length": 0.3,
        "is_adaptive": True,
        "update_interval": "step",
    }
    got = first_group(per_update(build(lr, small, epochs=10, per_epoch=10)))
    assert [got[k] for k in (0, 30, 60, 90)] == pytest.approx([0.15, 0.119115, 0.051922, 0.003817], abs=1e-6)


def test_seed_linear_warmup_cosine_warm_restart(examples, small, per_update, loop):
    built = optiplug.build(
        examples / "linear_warmup_cosine_warm_restart.yaml", small, steps_per_epoch=10, num_epochs=20
    )
    warmup, restarts = fv.LinearParamScheduler(0.6, 4.8), warm_restart(4.8, 0.0048, 0.334, "full")

    def reference(w):
        return warmup(w / 0.1) if w + 1e-6 <= 0.1 else restarts((w - 0.1) / 0.9)

    assert first_group(per_update(built)) == pytest.approx(loop(reference, "step", 20, 10), rel=1e-9)


def test_inverse_sqrt_verified_values(small, per_update):
    lr = {"name": "inverse_sqrt", "start_value": 4.8, "warmup_interval_length": 0.1, "update_interval": "step"}
    got = first_group(per_update(build(lr, small, epochs=100, per_epoch=10)))
    steps = [0, 10, 100, 250, 500, 999]  # w = 0, .01, .1, .25, .5, .999
    assert [got[k] for k in steps] == pytest.approx([1.517893, 15.178933, 4.8, 3.035787, 2.146625, 1.518653], abs=1e-6)


# -- update intervals of the other entries (ClassyVision's per-class defaults) ----------------------------------


@pytest.mark.parametrize(
    ("wd", "changes_within_epoch"),
    [
        ({"name": "cosine", "start_value": 1e-4, "end_value": 1e-5}, True),
        ({"name": "step", "values": [1e-4, 1e-5]}, False),
    ],
)
def test_weight_decay_schedule_interval_defaults_per_class(small, per_update, wd, changes_within_epoch):
    built = build({"name": "constant", "value": 0.1}, small, weight_decay=wd)
    regularized = [g for g in built.optimizer.param_groups if g["weight_decay"] != 0.0]
    index = built.optimizer.param_groups.index(regularized[0])
    values = per_update(built, "weight_decay")[index]
    assert (values[1] != values[0]) is changes_within_epoch
