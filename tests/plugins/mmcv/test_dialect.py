"""The mmcv dialect: detection, the run's length, the recipe it gives, and its errors."""

from __future__ import annotations

import pytest

import optiplug
from optiplug import ConfigError
from optiplug.engine.structuring import parse_recipe, unstructure_recipe
from optiplug_mmcv.dialect import detect

SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (dict(optimizer=dict(type="SGD", lr=0.1)), True),
        (dict(optimizer=dict(type="LARS"), model=dict(type="SimCLR")), True),
        (dict(optimizer=dict(name="sgd", lr=0.1)), False),
        (dict(optimizer="SGD"), False),
        (dict(optimizer=None), False),
        (dict(OPTIMIZER=dict(name="sgd")), False),
        ({}, False),
    ],
)
def test_detection(config, expected):
    assert detect(config) is expected


def test_the_dialect_is_found_and_can_be_forced(conv_bn_head):
    config = dict(optimizer=SGD, model=dict(type="SimCLR"), data=dict(samples_per_gpu=32))
    assert optiplug.to_recipe(config).optimizer.name == "SGD"
    assert optiplug.to_recipe(config, dialect="mmcv") == optiplug.to_recipe(config)


def test_the_recipe_round_trips_through_the_canonical_form():
    config = dict(
        optimizer=dict(SGD, paramwise_cfg=dict(norm_decay_mult=0, custom_keys={"head": dict(lr_mult=10)})),
        lr_config=dict(policy="Step", step=(30, 60), warmup="linear", warmup_iters=500),
        momentum_config=dict(policy="cyclic", target_ratio=[0.9, 1]),
        optimizer_config=dict(update_interval=2, grad_clip=dict(max_norm=10)),
        runner=dict(type="EpochBasedRunner", max_epochs=90),
    )
    registry = optiplug.get_registry()
    recipe = optiplug.to_recipe(config, steps_per_epoch=100)
    assert parse_recipe(unstructure_recipe(recipe, registry), registry) == recipe
    assert recipe.schedules["lr"].params.step == [30, 60]
    assert recipe.accumulation.schedule_clock == "iterations"


@pytest.mark.parametrize(
    ("extra", "build_args", "total"),
    [
        (dict(runner=dict(type="EpochBasedRunner", max_epochs=4)), dict(steps_per_epoch=5), 20),
        (dict(total_epochs=4), dict(steps_per_epoch=5), 20),
        (dict(runner=dict(max_epochs=4), total_epochs=4), dict(steps_per_epoch=5), 20),
        (dict(runner=dict(max_epochs=4)), dict(steps_per_epoch=5, num_epochs=6), 30),
        (dict(), dict(steps_per_epoch=5, num_epochs=6), 30),
        (dict(runner=dict(type="IterBasedRunner", max_iters=17)), dict(), 17),
        (dict(runner=dict(type="IterBasedRunner", max_iters=17)), dict(steps_per_epoch=5), 17),
    ],
)
def test_the_run_length(extra, build_args, total, conv_bn_head):
    config = dict(optimizer=SGD, lr_config=dict(policy="Poly", by_epoch=False), **extra)
    built = optiplug.build(config, conv_bn_head, **build_args)
    assert built.clock.total_steps == total


@pytest.mark.parametrize(
    ("extra", "build_args", "path", "words"),
    [
        (
            dict(runner=dict(type="EpochBasedRunnerAmp", max_epochs=3)),
            {},
            "runner.type",
            "did you mean 'EpochBasedRunner'",
        ),
        (dict(runner=dict(type="IterBasedRunner", max_epochs=3)), {}, "runner.max_epochs", "takes max_iters"),
        (dict(runner=dict(type="IterBasedRunner")), {}, "runner", "needs max_iters"),
        (dict(runner=dict(max_epochs=0)), {}, "runner.max_epochs", "whole number > 0"),
        (dict(runner=dict(max_epochs=3), total_epochs=4), {}, "total_epochs", "contradicts"),
        (dict(runner=dict(type="IterBasedRunner", max_iters=9), total_epochs=4), {}, "total_epochs", "contradicts"),
        (dict(runner=dict(type="IterBasedRunner", max_iters=9)), dict(num_epochs=2), "runner.max_iters", "num_epochs"),
        (dict(runner="EpochBasedRunner"), {}, "runner", "expected dict"),
        (dict(total_epochs=2.5), {}, "total_epochs", "whole number"),
    ],
)
def test_run_length_errors_name_the_path(extra, build_args, path, words, conv_bn_head):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=SGD, **extra), conv_bn_head, **build_args)
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)


def test_without_a_run_length_the_schedule_says_what_to_give(conv_bn_head):
    with pytest.raises(ConfigError, match="length of the run"):
        optiplug.build(dict(optimizer=SGD, lr_config=dict(policy="Poly")), conv_bn_head, steps_per_epoch=10)


def test_step_without_a_run_length_needs_none(conv_bn_head):
    built = optiplug.build(dict(optimizer=SGD, lr_config=dict(policy="Step", step=2)), conv_bn_head, steps_per_epoch=10)
    built.scheduler.set_step(25)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1**1)


def test_lars_with_lars_exclude_groups(conv_bn_head):
    # MMSelfSup's LARS, lars_exclude set per group by the param rules.
    options = {
        r"(bn|gn)(\d+)?.(weight|bias)": dict(weight_decay=0.0, lars_exclude=True),
        "bias": dict(weight_decay=0.0, lars_exclude=True),
    }
    config = dict(optimizer=dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-6, paramwise_options=options))
    built = optiplug.build(config, conv_bn_head)
    assert type(built.optimizer).__name__ == "LARS"
    flags = sorted(bool(g.get("lars_exclude", False)) for g in built.optimizer.param_groups)
    assert flags == [False, True]


def test_a_config_without_optimizer_type_is_not_this_dialect(conv_bn_head):
    with pytest.raises(ConfigError):
        optiplug.build(dict(optimizer=dict(lr=0.1), lr_config=dict(policy="Step", step=2)), conv_bn_head)


def test_a_malicious_py_config_is_refused_before_anything_runs(tmp_path, conv_bn_head):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.py"
    path.write_text(f"optimizer = dict(type='SGD', lr=0.1)\nimport os\nos.system('touch {marker}')\n")
    # the import is never run; the call after it is not run either, and may change any name: optimizer is unknown
    with pytest.raises(ConfigError, match=r"evil.py, line 3: not evaluated: a call to os.system\(\)"):
        optiplug.build(path, conv_bn_head)
    assert not marker.exists()


ITER_RUN = dict(type="IterBasedRunner", max_iters=30)
CYCLES_40 = dict(policy="Cyclic", cyclic_times=40, by_epoch=False)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            dict(optimizer=SGD, lr_config=CYCLES_40, runner=ITER_RUN),
            "lr_config.cyclic_times: 40 cycles do not fit in 30 iterations",
        ),
        (
            dict(optimizer=SGD, momentum_config=CYCLES_40, runner=ITER_RUN),
            "momentum_config.cyclic_times: 40 cycles do not fit in 30 iterations",
        ),
        (
            dict(optimizer=dict(SGD, lr="fast"), lr_config=dict(policy="Step", step=2)),
            "optimizer.lr: expected a number",
        ),
    ],
)
def test_build_checks_the_translation_once_and_names_the_mmcv_keys(config, message, conv_bn_head):
    optiplug.to_recipe(config, steps_per_epoch=10)  # translating does not run build()'s checks
    with pytest.raises(ConfigError) as raised:
        optiplug.build(config, conv_bn_head, steps_per_epoch=10)
    assert str(raised.value).startswith(message)
