"""optiplug_torch schedules against fvcore, the reference package, at every update of runs of several lengths."""

from __future__ import annotations

import math

import pytest
import torch
from fvcore.common import param_scheduler as fv

import optiplug
from optiplug.engine.structuring import parse_recipe
from optiplug.plugin import Clock, evaluate

LENGTHS = [1, 7, 10, 97, 1000]


def schedule(mapping):
    return parse_recipe({"schedules": {"x": mapping}}, optiplug.get_registry()).schedules["x"]


def ours(mapping, total, steps_per_epoch=1):
    clock = Clock(steps_per_epoch, float(total))
    return evaluate(schedule(mapping), clock, optiplug.get_registry()).tolist()


def theirs(scheduler, total):
    return [scheduler(k / total) for k in range(total)]


CASES = [
    ({"name": "constant", "value": 0.3}, lambda: fv.ConstantParamScheduler(0.3)),
    ({"name": "linear", "start_value": 0.01, "end_value": 0.1}, lambda: fv.LinearParamScheduler(0.01, 0.1)),
    ({"name": "cosine", "start_value": 0.1, "end_value": 0.0}, lambda: fv.CosineParamScheduler(0.1, 0.0)),
    ({"name": "cosine", "start_value": 0.0, "end_value": 4.8}, lambda: fv.CosineParamScheduler(0.0, 4.8)),
    ({"name": "exponential", "start_value": 2.0, "decay": 0.1}, lambda: fv.ExponentialParamScheduler(2.0, 0.1)),
    ({"name": "polynomial", "base_value": 0.1, "power": 2}, lambda: fv.PolynomialDecayParamScheduler(0.1, 2)),
    ({"name": "step", "values": [0.1, 0.01, 0.001]}, lambda: fv.StepParamScheduler(3, [0.1, 0.01, 0.001])),
    (
        {"name": "step_with_fixed_gamma", "base_value": 0.1, "num_decays": 3, "gamma": 0.1, "num_updates": 10},
        lambda: fv.StepWithFixedGammaParamScheduler(0.1, 3, 0.1, 10),
    ),
]


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize(("mapping", "reference"), CASES, ids=[c[0]["name"] for c in CASES])
def test_equal_to_fvcore(mapping, reference, total):
    expected = theirs(reference(), total)
    assert ours(mapping, total) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("epochs", [4, 10, 90])
def test_multistep_milestones_in_epochs_like_fvcore_with_num_updates(epochs):
    values, milestones = [1.0, 0.1, 0.01], [1, 3]
    per_epoch = 5
    reference = fv.MultiStepParamScheduler(values, num_updates=epochs, milestones=milestones)
    total = epochs * per_epoch
    mapping = {"name": "multistep", "values": values, "milestones": milestones}
    assert ours(mapping, total, per_epoch) == theirs(reference, total)


def test_multistep_even_default_milestones():
    reference = fv.MultiStepParamScheduler([1.0, 0.1, 0.01], num_updates=10)
    assert ours({"name": "multistep", "values": [1.0, 0.1, 0.01]}, 50, 5) == theirs(reference, 50)


def test_multistep_epsilon_boundary_from_the_spec():
    # values [1, 0.1, 0.01], milestones [3, 6], num_updates 10 gives 0.1 already at w = 0.299999
    mapping = {"name": "multistep", "values": [1, 0.1, 0.01], "milestones": [3, 6], "num_updates": 10}
    steps = torch.tensor([0.299999 * 1e6, 0.2999 * 1e6], dtype=torch.float64)
    values = evaluate(schedule(mapping), Clock(1, 1e6), optiplug.get_registry(), steps).tolist()
    assert values == [0.1, 1.0]


def test_step_does_not_fail_at_the_end_of_a_long_run():
    # fvcore raises IndexError for w in [1 - 1e-6, 1); we hold the last value (D7)
    total = 3_000_000
    values = evaluate(
        schedule({"name": "step", "values": [3.0, 2.0, 1.0]}),
        Clock(1, total),
        optiplug.get_registry(),
        [total - 1, total],
    )
    assert values.tolist() == [1.0, 1.0]


def test_inverse_sqrt_verified_values():
    mapping = {"name": "inverse_sqrt", "start_value": 4.8, "warmup_interval_length": 0.1}
    steps = [0, 10, 100, 250, 500, 999]
    values = evaluate(schedule(mapping), Clock(1, 1000.0), optiplug.get_registry(), steps).tolist()
    assert values == pytest.approx([1.517893, 15.178933, 4.8, 3.035787, 2.146625, 1.518653], abs=1e-6)


def test_composite_equals_fvcore_composite():
    parts = [
        ({"name": "linear", "start_value": 0.6, "end_value": 4.8}, fv.LinearParamScheduler(0.6, 4.8)),
        ({"name": "cosine", "start_value": 4.8, "end_value": 0.0048}, fv.CosineParamScheduler(4.8, 0.0048)),
        ({"name": "linear", "start_value": 0.0048, "end_value": 2.114}, fv.LinearParamScheduler(0.0048, 2.114)),
        ({"name": "cosine", "start_value": 2.114, "end_value": 0.0048}, fv.CosineParamScheduler(2.114, 0.0048)),
    ]
    lengths = [0.0256, 0.48722, 0.0256, 0.46166]
    modes = ["rescaled", "fixed", "rescaled", "rescaled"]
    reference = fv.CompositeParamScheduler([p[1] for p in parts], list(lengths), modes)
    mapping = {"name": "composite", "schedulers": [p[0] for p in parts], "lengths": lengths, "interval_scaling": modes}
    for total in (10, 391, 5000):
        assert ours(mapping, total) == pytest.approx(theirs(reference, total), rel=1e-9, abs=1e-15)


def test_composite_of_constants_from_fvcore_tests():
    mapping = {
        "name": "composite",
        "schedulers": [{"name": "constant", "value": v} for v in (0.1, 0.2, 0.3, 0.4)],
        "lengths": [0.2, 0.4, 0.1, 0.3],
    }
    assert ours(mapping, 10) == [0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.4, 0.4, 0.4]
    short = {"name": "composite", "schedulers": mapping["schedulers"][:2], "lengths": [0.7, 0.2999]}
    assert ours(short, 10) == [0.1] * 7 + [0.2] * 3


def test_epoch_interval_holds_the_epoch_value():
    # verified in the spec: cosine 0.1 -> 0, 4 epochs of 5 steps, per-epoch 0.1, 0.085355, 0.05, 0.014645
    values = ours({"name": "cosine", "start_value": 0.1, "end_value": 0.0, "update_interval": "epoch"}, 20, 5)
    expected = [0.1, 0.085355, 0.05, 0.014645]
    assert values == pytest.approx([v for v in expected for _ in range(5)], abs=1e-6)


def test_vectorized_values_equal_one_step_at_a_time():
    mapping = {
        "name": "composite",
        "schedulers": [
            {"name": "linear", "start_value": 0.0, "end_value": 1.0},
            {"name": "cosine", "start_value": 1.0, "end_value": 0.0},
        ],
        "lengths": [0.3, 0.7],
        "interval_scaling": ["rescaled", "fixed"],
    }
    clock = Clock(7, 70.0)
    whole = evaluate(schedule(mapping), clock, optiplug.get_registry()).tolist()
    single = [evaluate(schedule(mapping), clock, optiplug.get_registry(), [k]).item() for k in range(70)]
    assert whole == single


def test_schedules_that_need_the_run_length_say_so():
    with pytest.raises(optiplug.ConfigError, match="needs the length of the run"):
        evaluate(
            schedule({"name": "cosine", "start_value": 1, "end_value": 0}), Clock(5, None), optiplug.get_registry(), [0]
        )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"name": "multistep", "values": [0.1, 0.01, 0.001]}, None),
        (
            {"name": "multistep", "values": [0.1, 0.01], "milestones": [30]},
            r"milestones: milestones must be < num_updates \(10",
        ),
        ({"name": "multistep", "values": [0.1, 0.01], "milestones": [3, 5]}, "needs 1 milestone"),
        ({"name": "multistep", "values": [0.1, 0.01], "milestones": [5, 3]}, "must be strictly increasing"),
        ({"name": "step", "values": []}, "needs at least 1 item"),
        ({"name": "exponential", "start_value": 1, "decay": 0}, "decay: must be > 0, got 0"),
        (
            {"name": "step_with_fixed_gamma", "base_value": 1, "num_decays": 2.5, "gamma": 0.1},
            "num_decays: expected a whole number",
        ),
    ],
)
def test_errors_name_the_path(mapping, message):
    registry = optiplug.get_registry()
    if message is None:
        evaluate(schedule(mapping), Clock(2, 20.0), registry)
        return
    with pytest.raises(optiplug.ConfigError, match=message) as info:
        evaluate(schedule(mapping), Clock(2, 20.0), registry)
    assert info.value.path.startswith(("milestones", "values", "decay", "num_decays", "schedules.x", ""))


def test_build_applies_a_schedule_to_the_optimizer():
    model = torch.nn.Linear(2, 1)
    config = {
        "optimizer": {"name": "sgd", "lr": 1.0},
        "schedules": {"lr": {"name": "polynomial", "base_value": 0.5, "power": 1}},
    }
    built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=2)
    seen = []
    for _ in range(4):
        seen.append(built.optimizer.param_groups[0]["lr"])
        built.step(model(torch.ones(1, 2)).sum())
    assert seen == pytest.approx([0.5 * (1 - k / 4) for k in range(4)])
    assert math.isclose(built.optimizer.param_groups[0]["lr"], 0.0, abs_tol=1e-15)


def test_multistep_needs_as_many_updates_as_values():
    mapping = {"name": "multistep", "values": [0.1, 0.01, 0.001, 0.0001]}
    with pytest.raises(
        optiplug.ConfigError, match=r"num_updates: num_updates \(3; epochs by default\) must be at least"
    ):
        evaluate(schedule(mapping), Clock(2, 6.0), optiplug.get_registry())
