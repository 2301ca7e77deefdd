"""momentum_config: every MMCV momentum policy x warmup x by_epoch, on momentum and on Adam's beta1."""

from __future__ import annotations

import re
import warnings

import pytest

import optiplug
from optiplug import ConfigError

L, E = 10, 3
T = L * E
TOLERANCE = 1e-12

EPOCH_POLICIES = {
    "Step": {"step": [1, 2], "min_momentum": 0.3},
    "CosineAnnealing": {"min_momentum": 0.8},
    "LinearAnnealing": {"min_momentum_ratio": 0.5},
}
ITER_POLICIES = {
    "Step": {"step": 9, "gamma": 0.8},
    "Cyclic": {"target_ratio": (0.85 / 0.95, 1), "cyclic_times": 1, "step_ratio_up": 0.4},
    "Cyclic-gamma": {
        "target_ratio": 0.9,
        "cyclic_times": 3,
        "step_ratio_up": 0.3,
        "gamma": 0.7,
        "anneal_strategy": "linear",
    },
    "OneCycle": {},
    "OneCycle-3": {"base_momentum": 0.8, "max_momentum": 0.9, "three_phase": True, "pct_start": 0.2},
}
WARMUPS = [
    {},
    {"warmup": "constant", "warmup_iters": 4, "warmup_ratio": 0.5},
    {"warmup": "linear", "warmup_iters": 12},
    {"warmup": "exp", "warmup_iters": 5, "warmup_ratio": 0.7},
]
OPTIMIZERS = {
    # Two groups with their own base momentum (MMCV's initial_momentum per group).
    "momentum": (dict(type="SGD", lr=0.1, momentum=0.95, paramwise_options={"bias": dict(momentum=0.9)}), [0.95, 0.9]),
    "betas": (
        dict(type="Adam", lr=0.1, betas=(0.9, 0.999), paramwise_options={"bias": dict(betas=(0.85, 0.99))}),
        [0.9, 0.85],
    ),
}


def build(optimizer, momentum_config, model):
    config = dict(
        optimizer=optimizer, momentum_config=momentum_config, runner=dict(type="EpochBasedRunner", max_epochs=E)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = optiplug.build(config, model, steps_per_epoch=L)
    # MMCV's warmup divides the momentum by warmup_ratio: above 1 it is built as MMCV does, with a warning.
    messages = [str(w.message) for w in caught]
    assert all(re.search(r"^momentum_config: .* must be below 1 \(mmcv accepts this", m) for m in messages), messages
    built.range_warnings = len(messages)
    return built


def cases():
    for option in OPTIMIZERS:
        for by_epoch, policies in ((True, EPOCH_POLICIES), (False, {**EPOCH_POLICIES, **ITER_POLICIES})):
            for label, options in policies.items():
                for warmup in WARMUPS:
                    name = f"{option}-{label}-by_epoch={by_epoch}-{warmup.get('warmup')}"
                    yield pytest.param(option, label, options, by_epoch, warmup, id=name)


@pytest.mark.parametrize(("option", "label", "options", "by_epoch", "warmup"), list(cases()))
def test_every_policy_per_iteration(option, label, options, by_epoch, warmup, linear_model, mmcv):
    optimizer, bases = OPTIMIZERS[option]
    policy = label.split("-")[0]
    built = build(optimizer, dict(policy=policy, by_epoch=by_epoch, **options, **warmup), linear_model)
    got = mmcv.record(built, linear_model, T, option, train=option == "momentum")
    expected = mmcv.simulate(
        mmcv.momentum_policy(policy, **options), bases, L=L, E=E, by_epoch=by_epoch, divide=True, **warmup
    )
    for i, (row, ref) in enumerate(zip(got, expected, strict=True)):
        assert row == pytest.approx(ref, abs=TOLERANCE, rel=0), f"iteration {i}"


def test_warmup_divides_the_momentum(linear_model, mmcv):
    # mmcv's test_momentum_runner_hook values: momentum 0.95, warmup ratio 0.5 over 5 iterations, at iteration 2.
    expected = {"constant": 1.9, "linear": 1.3571428571428572, "exp": 1.4399307381848783}
    optimizer = dict(type="SGD", lr=0.02, momentum=0.95)
    for warmup, value in expected.items():
        momentum_config = dict(policy="Step", step=100, by_epoch=False, warmup=warmup, warmup_iters=5, warmup_ratio=0.5)
        built = build(optimizer, momentum_config, linear_model)
        assert built.range_warnings == 1
        got = mmcv.record(built, linear_model, 3, "momentum")
        assert got[2][0] == pytest.approx(value, abs=TOLERANCE, rel=0)


def test_adam_keeps_its_beta2(linear_model):
    optimizer = dict(type="AdamW", lr=1e-3, betas=(0.9, 0.95))
    built = build(optimizer, dict(policy="CosineAnnealing", min_momentum=0.5, by_epoch=False), linear_model)
    built.scheduler.set_step(T // 2)
    beta1, beta2 = built.optimizer.param_groups[0]["betas"]
    assert beta1 == pytest.approx(0.7)
    assert beta2 == 0.95


def test_one_cycle_ignores_the_groups_momentum(linear_model, mmcv):
    # MMCV overwrites every group's momentum with max_momentum: both groups follow the same cycle.
    optimizer, _ = OPTIMIZERS["momentum"]
    got = mmcv.record(build(optimizer, dict(policy="OneCycle"), linear_model), linear_model, T, "momentum")
    assert got[0] == [0.95, 0.95]
    assert min(row[0] for row in got) == pytest.approx(0.85, abs=1e-3)


@pytest.mark.parametrize(
    ("optimizer", "momentum_config", "path", "words"),
    [
        (dict(type="SGD", lr=0.1, momentum=0.9), dict(policy="Poly"), "momentum_config.policy", "known: Step"),
        (
            dict(type="SGD", lr=0.1, momentum=0.9),
            dict(policy="CosineAnnealing"),
            "momentum_config.min_momentum",
            "exactly one",
        ),
        (
            dict(type="SGD", lr=0.1, momentum=0.9),
            dict(policy="OneCycle", by_epoch=True),
            "momentum_config.by_epoch",
            "by_epoch=False",
        ),
        (
            dict(type="SGD", lr=0.1, momentum=0.9),
            dict(policy="OneCycle", max_momentum=[0.9]),
            "momentum_config.max_momentum",
            "per-group",
        ),
        (
            dict(type="SGD", lr=0.1, momentum=0.9),
            dict(policy="Step", step=2, warmup="linear", warmup_iters=2, warmup_by_epoch=True),
            "momentum_config.warmup_by_epoch",
            "unknown key",
        ),
        (dict(type="Adagrad", lr=0.1), dict(policy="Step", step=2), "momentum_config", "neither momentum nor betas"),
    ],
)
def test_momentum_config_errors_name_the_path(optimizer, momentum_config, path, words, linear_model):
    with pytest.raises(ConfigError) as caught:
        build(optimizer, momentum_config, linear_model)
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)
