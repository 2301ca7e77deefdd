"""lr_config: every MMCV 1.x policy x warmup x by_epoch, per iteration, against the simulated runner."""

from __future__ import annotations

import math

import pytest

import optiplug
from optiplug import ConfigError

L, E = 10, 3
T = L * E
BIAS_MULT = 0.2
BASES = [0.1, 0.1 * BIAS_MULT]  # the weight's group and the bias's group (lr_mult, as MMSelfSup computes it)
TOLERANCE = 1e-12

EPOCH_POLICIES = {
    "Fixed": {},
    "Step": {"step": [1, 2], "gamma": 0.1},
    "Step-int-min": {"step": 2, "gamma": 0.5, "min_lr": 0.03},
    "Exp": {"gamma": 0.9},
    "Poly": {"power": 0.9, "min_lr": 1e-4},
    "Inv": {"gamma": 0.1, "power": 0.75},
    "CosineAnnealing": {"min_lr": 0.0},
    "CosineAnnealing-ratio": {"min_lr_ratio": 0.01},
    "LinearAnnealing": {"min_lr_ratio": 0.1},
    "FlatCosineAnnealing": {"start_percent": 0.5, "min_lr": 1e-3},
    "CosineRestart": {"periods": [1, 2], "restart_weights": [1, 0.5], "min_lr": 1e-3},
    "StepFixCosineAnnealing": {"min_lr": 1e-6},
}
ITER_POLICIES = {
    "Step": {"step": [7, 19], "gamma": 0.5},
    "CosineRestart": {"periods": [10, 20], "restart_weights": [1, 0.5], "min_lr_ratio": 0.01},
    "FlatCosineAnnealing": {"start_percent": 0.25, "min_lr_ratio": 0.1},
    "Cyclic": {"target_ratio": (10, 1e-4), "cyclic_times": 1, "step_ratio_up": 0.4},
    "Cyclic-gamma": {
        "target_ratio": [10.0, 1.0],
        "cyclic_times": 2,
        "step_ratio_up": 0.5,
        "anneal_strategy": "linear",
        "gamma": 0.5,
    },
    "Cyclic-uneven": {"target_ratio": 4, "cyclic_times": 4, "step_ratio_up": 0.0, "gamma": 0.8},
    "OneCycle": {"max_lr": 0.5},
    "OneCycle-3": {
        "max_lr": 0.5,
        "three_phase": True,
        "anneal_strategy": "linear",
        "total_steps": 40,
        "pct_start": 0.25,
    },
}
WARMUPS = [
    {},
    {"warmup": "constant", "warmup_iters": 4, "warmup_ratio": 0.5},
    {"warmup": "linear", "warmup_iters": 15, "warmup_ratio": 0.1},
    {"warmup": "exp", "warmup_iters": 5, "warmup_ratio": 0.1},
    {"warmup": "linear", "warmup_iters": 1, "warmup_ratio": 1e-3, "warmup_by_epoch": True},
    {"warmup": "exp", "warmup_iters": 2, "warmup_ratio": 0.2, "warmup_by_epoch": True},
]


def build(lr_config, linear_model, **build_args):
    config = dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, paramwise_options={"bias": dict(lr_mult=BIAS_MULT)}),
        lr_config=lr_config,
        runner=dict(type="EpochBasedRunner", max_epochs=E),
    )
    return optiplug.build(config, linear_model, steps_per_epoch=L, **build_args)


def cases():
    for by_epoch, policies in ((True, EPOCH_POLICIES), (False, {**EPOCH_POLICIES, **ITER_POLICIES})):
        for label, options in policies.items():
            for warmup in WARMUPS:
                unit = "epochs" if warmup.get("warmup_by_epoch") else "iters"
                name = f"{label}-by_epoch={by_epoch}-{warmup.get('warmup')}-{warmup.get('warmup_iters', 0)}{unit}"
                yield pytest.param(label, options, by_epoch, warmup, id=name)


@pytest.mark.parametrize(("label", "options", "by_epoch", "warmup"), list(cases()))
def test_every_policy_per_iteration(label, options, by_epoch, warmup, linear_model, mmcv):
    policy = label.split("-")[0]
    lr_config = dict(policy=policy, by_epoch=by_epoch, **options, **warmup)
    built = build(lr_config, linear_model)
    got = mmcv.record(built, linear_model, T)
    expected = mmcv.simulate(
        mmcv.lr_policy(policy, **options),
        BASES,
        L=L,
        E=E,
        by_epoch=by_epoch,
        ratio_free=policy == "StepFixCosineAnnealing",
        **warmup,
    )
    assert len(built.optimizer.param_groups) == 2
    for i, (row, ref) in enumerate(zip(got, expected, strict=True)):
        assert row == pytest.approx(ref, abs=TOLERANCE, rel=0), f"iteration {i}"


# Recorded from real mmcv 1.7.2: group base lr 0.1, L = 10, 3 epochs; iteration: lr (repr).
SPEC_TABLE = [
    (
        dict(policy="step", step=[1, 2], gamma=0.1, warmup="linear", warmup_iters=5, warmup_ratio=0.1),
        {
            0: 0.009999999999999998,
            1: 0.027999999999999994,
            4: 0.08200000000000002,
            5: 0.1,
            10: 0.010000000000000002,
            29: 0.0010000000000000002,
        },
    ),
    (
        dict(
            policy="step",
            step=4,
            gamma=0.5,
            min_lr=0.01,
            by_epoch=False,
            warmup="exp",
            warmup_iters=5,
            warmup_ratio=0.1,
        ),
        {
            0: 0.010000000000000002,
            1: 0.015848931924611134,
            4: 0.03154786722400967,
            5: 0.05,
            9: 0.025,
            15: 0.0125,
            29: 0.01,
        },
    ),
    (
        dict(
            policy="poly",
            power=0.9,
            min_lr=1e-4,
            by_epoch=False,
            warmup="linear",
            warmup_iters=1,
            warmup_ratio=1e-3,
            warmup_by_epoch=True,
        ),
        {
            0: 0.0001000000000000001,
            1: 0.009787092434476105,
            9: 0.06531957554241635,
            10: 0.06945589094989456,
            29: 0.00477903570219054,
        },
    ),
    (
        dict(
            policy="CosineAnnealing",
            min_lr=0,
            by_epoch=True,
            warmup="linear",
            warmup_iters=1,
            warmup_ratio=1e-4,
            warmup_by_epoch=True,
        ),
        {
            0: 9.9999999999989e-06,
            1: 0.010009000000000002,
            9: 0.090001,
            10: 0.07500000000000001,
            29: 0.025000000000000012,
        },
    ),
    (
        dict(
            policy="CosineAnnealing",
            min_lr_ratio=0.01,
            by_epoch=False,
            warmup="constant",
            warmup_iters=4,
            warmup_ratio=0.5,
        ),
        {0: 0.05, 1: 0.049864416910364764, 4: 0.09572050015330874, 15: 0.0505, 29: 0.0012711661792704722},
    ),
    (
        dict(policy="FlatCosineAnnealing", start_percent=0.5, min_lr=1e-3, by_epoch=False),
        {15: 0.1, 29: 0.0020816937636766184},
    ),
    (
        dict(policy="CosineRestart", periods=[10, 20], restart_weights=[1, 0.5], min_lr=1e-3, by_epoch=False),
        {
            1: 0.09757729755661011,
            9: 0.0034227024433899004,
            10: 0.0505,
            15: 0.043250892834367054,
            29: 0.001304713570270343,
        },
    ),
    (
        dict(policy="cyclic", target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4),
        {
            0: 0.09999999999999998,
            1: 0.11533337816991929,
            9: 0.8681980515339464,
            15: 0.9330133717652005,
            29: 0.007606047532661051,
        },
    ),
    (
        dict(
            policy="cyclic",
            target_ratio=(10.0, 1.0),
            cyclic_times=2,
            step_ratio_up=0.5,
            anneal_strategy="linear",
            gamma=0.5,
        ),
        {1: 0.22857142857142856, 9: 0.775, 10: 0.6625, 15: 0.1, 29: 0.15625},
    ),
    (
        dict(policy="OneCycle", max_lr=0.5, pct_start=0.3),
        {
            0: 0.020000000000000018,
            1: 0.03826891219729123,
            4: 0.26,
            10: 0.4888932458737294,
            15: 0.3750005,
            29: 2.0000000000000003e-06,
        },
    ),
    (
        dict(
            policy="StepFixCosineAnnealing",
            min_lr=1e-6,
            warmup="linear",
            warmup_iters=1,
            warmup_by_epoch=True,
            by_epoch=False,
        ),
        {
            0: 0.0,
            1: 0.005782214503477902,
            9: 0.08944598086702794,
            10: 0.1,
            15: 0.08535548550593679,
            29: 0.0006165768144134146,
        },
    ),
]


@pytest.mark.parametrize(("lr_config", "table"), SPEC_TABLE, ids=[c["policy"] for c, _ in SPEC_TABLE])
def test_spec_reference_values(lr_config, table, linear_model, mmcv):
    got = mmcv.record(build(lr_config, linear_model), linear_model, T)
    for i, value in table.items():
        assert abs(got[i][0] - value) <= TOLERANCE, f"iteration {i}: {got[i][0]!r} != {value!r}"


def test_policy_names_are_case_insensitive(linear_model, mmcv):
    spellings = ["CosineAnnealing", "cosineannealing", "COSINEANNEALING"]
    traces = [mmcv.record(build(dict(policy=p, min_lr=0.0), linear_model), linear_model, 5) for p in spellings]
    assert traces[0] == traces[1] == traces[2]


def test_min_lr_is_absolute_for_every_group(linear_model, mmcv):
    # BarlowTwins 0.x: groups with an lr_mult anneal to the same absolute floor.
    built = build(dict(policy="CosineAnnealing", min_lr=0.05, by_epoch=False), linear_model)
    first = mmcv.record(built, linear_model, T)
    assert first[0] == pytest.approx(BASES)
    built.scheduler.set_step(T)
    assert [g["lr"] for g in built.optimizer.param_groups] == pytest.approx([0.05, 0.05])


def test_a_canonical_recipe_uses_the_policies(linear_model, mmcv):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {
            "lr": {
                "name": "mmcv_cosine_annealing",
                "min_lr_ratio": 0.01,
                "by_epoch": False,
                "warmup": "exp",
                "warmup_iters": 5,
            }
        },
    }
    built = optiplug.build(recipe, linear_model, steps_per_epoch=L, num_epochs=E)
    got = [built.scheduler.set_step(i) or built.optimizer.param_groups[0]["lr"] for i in range(T)]
    options = {"min_lr_ratio": 0.01}
    expected = mmcv.simulate(
        mmcv.lr_policy("CosineAnnealing", **options), [0.1], L=L, E=E, by_epoch=False, warmup="exp", warmup_iters=5
    )
    assert got == pytest.approx([row[0] for row in expected], abs=TOLERANCE, rel=0)


def test_iter_based_runner_counts_max_iters(linear_model, mmcv):
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        lr_config=dict(policy="poly", power=1.0, by_epoch=False, warmup="linear", warmup_iters=3),
        runner=dict(type="IterBasedRunner", max_iters=12),
    )
    got = mmcv.record(optiplug.build(config, linear_model), linear_model, 12)
    expected = mmcv.simulate(mmcv.lr_policy("Poly"), [0.1], L=12, T=12, by_epoch=False, warmup="linear", warmup_iters=3)
    assert [row[0] for row in got] == pytest.approx([row[0] for row in expected], abs=TOLERANCE, rel=0)


def test_warmup_by_epoch_defaults_to_false(linear_model, mmcv):
    # The code's default (the MMSelfSup tutorial says True): warmup_iters=2 means 2 iterations.
    got = mmcv.record(build(dict(policy="Fixed", warmup="linear", warmup_iters=2), linear_model), linear_model, 3)
    assert [row[0] for row in got] == pytest.approx([0.01, 0.1 * (1 - 0.5 * 0.9), 0.1])


@pytest.mark.parametrize(
    ("lr_config", "path", "words"),
    [
        (dict(policy="CosineAnealing", min_lr=0), "lr_config.policy", "did you mean 'CosineAnnealing'"),
        (dict(min_lr=0), "lr_config", "policy"),
        (dict(policy="CosineAnnealing"), "lr_config.min_lr", "exactly one of min_lr and min_lr_ratio"),
        (dict(policy="CosineAnnealing", min_lr=0, min_lr_ratio=0.1), "lr_config.min_lr", "both"),
        (dict(policy="Step", step=(1, 0)), "lr_config.step", "(1, 0)"),
        (dict(policy="Step", step="3"), "lr_config.step", "'3'"),
        (dict(policy="Step", step=2, warmup="cosine", warmup_iters=3), "lr_config.warmup", "'cosine'"),
        (dict(policy="Step", step=2, warmup="linear"), "lr_config.warmup_iters", "> 0"),
        (
            dict(policy="Step", step=2, warmup="linear", warmup_iters=3, warmup_ratio=0),
            "lr_config.warmup_ratio",
            "(0, 1]",
        ),
        (dict(policy="Step", step=2, gama=0.5), "lr_config.gama", "did you mean 'gamma'"),
        (dict(policy="Cyclic", by_epoch=True), "lr_config.by_epoch", "by_epoch=False"),
        (dict(policy="Cyclic", target_ratio=[1, 2, 3]), "lr_config.target_ratio", "[1, 2, 3]"),
        (dict(policy="Cyclic", cyclic_times=40), "lr_config.cyclic_times", "40 cycles do not fit in 30 iterations"),
        (dict(policy="Cyclic", step_ratio_up=1.0), "lr_config.step_ratio_up", "[0, 1)"),
        (dict(policy="Cyclic", gamma=0), "lr_config.gamma", "(0, 1]"),
        (dict(policy="OneCycle", max_lr=[0.1, 0.2]), "lr_config.max_lr", "per-group lists"),
        (dict(policy="OneCycle", max_lr=0.1, total_steps=20), "lr_config.total_steps", ">= the run's 30 iterations"),
        (dict(policy="OneCycle", max_lr=0.1, pct_start=1.5), "lr_config.pct_start", "[0, 1]"),
        (dict(policy="OneCycle", max_lr=0.1, anneal_strategy="cosine"), "lr_config.anneal_strategy", "'cos'"),
        (
            dict(policy="CosineRestart", periods=[1, 1], restart_weights=[1, 1], min_lr=0),
            "lr_config.periods",
            "cover 2 epochs but the run lasts 3",
        ),
        (
            dict(policy="CosineRestart", periods=[1, 2], restart_weights=[1], min_lr=0),
            "lr_config.restart_weights",
            "one weight per period",
        ),
        (
            dict(policy="StepFixCosineAnnealing", min_lr=0, warmup="linear", warmup_iters=3, warmup_by_epoch=True),
            "lr_config.warmup_iters",
            "as long as the run",
        ),
        (dict(policy="Fixed", update_interval="epoch"), "lr_config.update_interval", "not an argument"),
    ],
)
def test_lr_config_errors_name_the_path(lr_config, path, words, linear_model):
    with pytest.raises(ConfigError) as caught:
        build(lr_config, linear_model)
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("key", ["by_epoch", "warmup_by_epoch"])
def test_epochs_with_an_iter_based_runner_are_refused(key, linear_model):
    lr_config = dict(
        policy="Fixed", warmup="linear", warmup_iters=1, by_epoch=key == "by_epoch", warmup_by_epoch=key != "by_epoch"
    )
    config = dict(
        optimizer=dict(type="SGD", lr=0.1), lr_config=lr_config, runner=dict(type="IterBasedRunner", max_iters=10)
    )
    with pytest.raises(ConfigError) as caught:
        optiplug.build(config, linear_model)
    assert caught.value.path == f"lr_config.{key}"
    assert "IterBasedRunner" in str(caught.value)


def test_by_epoch_defaults_to_false_with_an_iter_based_runner(linear_model, mmcv):
    # IterBasedRunner.register_training_hooks: lr_config.setdefault('by_epoch', False).
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        lr_config=dict(policy="Step", step=3),
        runner=dict(type="IterBasedRunner", max_iters=10),
    )
    built = optiplug.build(config, linear_model)
    expected = mmcv.simulate(mmcv.lr_policy("Step", step=3), [0.1], L=10, T=10, by_epoch=False)
    assert [v for row in mmcv.record(built, linear_model, 10) for v in row] == pytest.approx(
        [v for row in expected for v in row], rel=1e-12
    )


def test_epoch_runner_needs_the_epoch_length(linear_model):
    config = dict(optimizer=dict(type="SGD", lr=0.1), lr_config=dict(policy="Step", step=3), runner=dict(max_epochs=10))
    with pytest.raises(ConfigError, match="pass steps_per_epoch") as caught:
        optiplug.build(config, linear_model)
    assert caught.value.path == "runner"


def test_schedule_values_past_the_end_stay_finite(linear_model):
    built = build(dict(policy="OneCycle", max_lr=0.5), linear_model)
    built.scheduler.set_step(T)
    assert all(math.isfinite(g["lr"]) for g in built.optimizer.param_groups)
