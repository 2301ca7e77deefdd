"""MMCV's runner defaults: what register_training_hooks and the train APIs do to the hook configs.

References: ``IterBasedRunner.register_training_hooks`` (``lr_config.setdefault('by_epoch',
False)``; ``momentum_config`` untouched), ``IterBasedRunner.run`` (no ``before_train_epoch``,
so a ``by_epoch`` hook never moves), MMSegmentation's ``train_segmentor`` (``total_iters``
without ``runner`` is an IterBasedRunner). The expected values come from the simulated
hooks in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import optiplug
from optiplug import ConfigError, OptiplugWarning

CONFIGS = Path(__file__).parent / "configs"
SGD = dict(type="SGD", lr=0.1, momentum=0.9)


def test_mmdetection_90k_iteration_schedule(linear_model, mmcv):
    built = optiplug.build(CONFIGS / "mmdet_90k_iters.py", linear_model)
    expected = mmcv.simulate(
        mmcv.lr_policy("Step", step=[60, 80]),
        [0.02],
        L=90,
        T=90,
        by_epoch=False,
        warmup="linear",
        warmup_iters=5,
        warmup_ratio=0.001,
    )
    assert _flat(mmcv.record(built, linear_model, 90)) == pytest.approx(_flat(expected), rel=1e-12)


def test_total_iters_without_runner_is_an_iter_based_run(linear_model, mmcv):
    built = optiplug.build(CONFIGS / "mmseg_total_iters.py", linear_model)
    policy = mmcv.lr_policy("Poly", power=0.9, min_lr=1e-4)
    expected = mmcv.simulate(policy, [0.01], L=40, T=40, by_epoch=False)
    assert _flat(mmcv.record(built, linear_model, 40)) == pytest.approx(_flat(expected), rel=1e-12)
    assert built.scheduler is not None


def test_total_iters_makes_an_unset_by_epoch_false(linear_model, mmcv):
    config = dict(optimizer=dict(type="SGD", lr=0.1), lr_config=dict(policy="Step", step=4), total_iters=12)
    built = optiplug.build(config, linear_model)
    expected = mmcv.simulate(mmcv.lr_policy("Step", step=4), [0.1], L=12, T=12, by_epoch=False)
    assert _flat(mmcv.record(built, linear_model, 12)) == pytest.approx(_flat(expected), rel=1e-12)


def test_momentum_config_keeps_by_epoch_true_and_never_moves(linear_model):
    config = dict(
        optimizer=SGD,
        momentum_config=dict(policy="CosineAnnealing", min_momentum=0.5),
        runner=dict(type="IterBasedRunner", max_iters=8),
    )
    with pytest.warns(OptiplugWarning, match="momentum_config: an IterBasedRunner never moves a by_epoch hook"):
        built = optiplug.build(config, linear_model)
    assert [m[0] for m in _trace(built, linear_model, 8, "momentum")] == [0.9] * 8


def test_explicit_by_epoch_lr_under_iter_runner_keeps_the_lr(linear_model):
    config = dict(
        optimizer=SGD,
        lr_config=dict(policy="Step", step=2, by_epoch=True),
        runner=dict(type="IterBasedRunner", max_iters=6),
    )
    with pytest.warns(OptiplugWarning, match="keeps the optimizer's lr"):
        built = optiplug.build(config, linear_model)
    assert [v[0] for v in _trace(built, linear_model, 6, "lr")] == [0.1] * 6


def test_momentum_by_epoch_false_moves_per_iteration(linear_model, mmcv):
    config = dict(
        optimizer=SGD,
        momentum_config=dict(policy="CosineAnnealing", min_momentum=0.5, by_epoch=False),
        runner=dict(type="IterBasedRunner", max_iters=8),
    )
    built = optiplug.build(config, linear_model)
    expected = mmcv.simulate(
        mmcv.momentum_policy("CosineAnnealing", min_momentum=0.5), [0.9], L=8, T=8, by_epoch=False, divide=True
    )
    assert _flat(_trace(built, linear_model, 8, "momentum")) == pytest.approx(_flat(expected), rel=1e-12)


@pytest.mark.parametrize(
    ("config", "path", "words"),
    [
        (
            dict(
                optimizer=SGD,
                momentum_config=dict(policy="CosineAnnealing", min_momentum=0.5, warmup="linear", warmup_iters=2),
                runner=dict(type="IterBasedRunner", max_iters=8),
            ),
            "momentum_config.by_epoch",
            "MMCV fails at the first warmup iteration",
        ),
        (
            dict(optimizer=SGD, lr_config=dict(policy="Step", step=2), total_iters=8, total_epochs=2),
            "total_iters",
            "not both",
        ),
        (dict(optimizer=SGD, total_iters=0), "total_iters", "whole number > 0"),
    ],
)
def test_runner_default_errors(config, path, words, linear_model):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(config, linear_model)
    assert caught.value.path == path
    assert words in str(caught.value)


def test_total_iters_beside_a_runner_is_ignored_with_a_warning(linear_model):
    config = dict(
        optimizer=SGD, lr_config=dict(policy="Fixed"), runner=dict(type="IterBasedRunner", max_iters=8), total_iters=99
    )
    with pytest.warns(OptiplugWarning, match="total_iters=99 is ignored"):
        recipe = optiplug.to_recipe(config)
    assert recipe.run.total_steps == 8


def _flat(rows: list[list[float]]) -> list[float]:
    return [v for row in rows for v in row]


def _trace(built: optiplug.Built, model, n: int, option: str) -> list[list[float]]:
    import torch

    x = torch.ones(1, model.in_features)
    out = []
    for _ in range(n):
        out.append([g[option] for g in built.optimizer.param_groups])
        built.step(model(x).sum())
    return out
