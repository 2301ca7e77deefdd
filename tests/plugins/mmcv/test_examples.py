"""The MMSelfSup tutorial's snippets, shipped as examples/mmcv/*.py, build what the tutorial says."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ClipConfig
from optiplug.recipe.pyfile import load_pyfile

CONFIGS = [
    "sgd.py",
    "adam.py",
    "simclr_lars_cosine.py",
    "warmup_linear_by_iter.py",
    "warmup_exp_by_epoch.py",
    "cyclic_lr_momentum.py",
    "paramwise_options.py",
    "grad_clip.py",
    "grad_clip_inherited.py",
    "accumulate_64x4.py",
    "batch_256.py",
]
L = 1252  # iterations per epoch in the tutorial's warmup example


def lr_at(built, iteration):
    built.scheduler.set_step(iteration)
    return built.optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_example_builds_from_its_file(name, conv_bn_head, mmcv):
    built = optiplug.build(mmcv.examples / name, conv_bn_head, steps_per_epoch=L)
    assert isinstance(built.optimizer, torch.optim.Optimizer)


def test_the_examples_directory_is_covered(mmcv):
    shipped = {p.name for p in mmcv.examples.glob("*.py")}
    assert shipped == set(CONFIGS)


def test_optimizer_snippets(conv_bn_head, mmcv):
    sgd = optiplug.build(mmcv.examples / "sgd.py", conv_bn_head).optimizer
    assert type(sgd) is torch.optim.SGD
    assert (sgd.defaults["lr"], sgd.defaults["weight_decay"]) == (0.0003, 0.0001)
    adam = optiplug.build(mmcv.examples / "adam.py", conv_bn_head).optimizer
    assert type(adam) is torch.optim.Adam
    assert {k: adam.defaults[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad")} == {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-08,
        "weight_decay": 0,
        "amsgrad": False,
    }


def test_warmup_counted_in_iterations(conv_bn_head, mmcv):
    built = optiplug.build(mmcv.examples / "warmup_linear_by_iter.py", conv_bn_head, steps_per_epoch=L)
    T, W, b = 100 * L, 20 * L, 0.3
    for i in (0, 1, W // 2, W - 1, W, T - 1):
        regular = mmcv.annealing_cos(b, b * 1e-2, i / T)
        expected = regular * (1 - (1 - i / W) * (1 - 1e-3)) if i < W else regular
        assert lr_at(built, i) == pytest.approx(expected, rel=1e-13)


def test_warmup_counted_in_epochs_still_moves_every_iteration(conv_bn_head, mmcv):
    built = optiplug.build(mmcv.examples / "warmup_exp_by_epoch.py", conv_bn_head, steps_per_epoch=L)
    W, b = 5 * L, 0.3
    for i in (0, 1, L - 1, L, W - 1, W, W + 1):
        regular = mmcv.annealing_cos(b, 0, (i // L) / 100)
        expected = regular * 0.1 ** (1 - i / W) if i < W else regular
        assert lr_at(built, i) == pytest.approx(expected, rel=1e-13)
    assert lr_at(built, 1) != lr_at(built, 0)


def test_simclr_lars_schedule_and_groups(conv_bn_head, mmcv):
    # linear warmup: lr * (1 - (1 - i/10L)(1 - 1e-4)) during the warmup, then the epoch cosine (0.99384 lr at epoch 10).
    built = optiplug.build(mmcv.examples / "simclr_lars_cosine.py", conv_bn_head, steps_per_epoch=L)
    assert type(built.optimizer).__name__ == "LARS"
    assert lr_at(built, 0) == pytest.approx(4.8 * 1e-4)
    assert lr_at(built, 10 * L) == pytest.approx(4.8 * 0.5 * (1 + math.cos(math.pi * 10 / 200)))
    assert lr_at(built, 10 * L) / 4.8 == pytest.approx(0.99384, abs=1e-5)
    excluded = {n for g in built.groups if g.options.get("lars_exclude") for n in g.names}
    assert excluded == {"conv1.bias", "bn1.weight", "bn1.bias", "head.bias"}
    assert all(g.options["weight_decay"] == 0 for g in built.groups if g.options.get("lars_exclude"))


def test_cyclic_lr_and_momentum_pair(linear_model, mmcv):
    built = optiplug.build(mmcv.examples / "cyclic_lr_momentum.py", linear_model, steps_per_epoch=10)
    twin_model = copy.deepcopy(linear_model)
    twin = optiplug.build(mmcv.examples / "cyclic_lr_momentum.py", twin_model, steps_per_epoch=10)
    lr = mmcv.record(built, linear_model, 30, "lr")
    momentum = mmcv.record(twin, twin_model, 30, "momentum")
    options = dict(target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4)
    expected_lr = mmcv.simulate(mmcv.lr_policy("Cyclic", **options), [0.1], L=10, E=3, by_epoch=False)
    options = dict(target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)
    expected_momentum = mmcv.simulate(
        mmcv.momentum_policy("Cyclic", **options), [0.95], L=10, E=3, by_epoch=False, divide=True
    )
    assert [r[0] for r in lr] == pytest.approx([r[0] for r in expected_lr], abs=1e-12, rel=0)
    assert [r[0] for r in momentum] == pytest.approx([r[0] for r in expected_momentum], abs=1e-12, rel=0)
    assert min(r[0] for r in momentum) == pytest.approx(0.85, abs=2e-3)  # momentum low while the lr is high
    assert max(r[0] for r in lr) == pytest.approx(1.0, abs=0.01)


def test_no_decay_on_norms_and_biases(conv_bn_head, mmcv):
    built = optiplug.build(mmcv.examples / "paramwise_options.py", conv_bn_head)
    by_decay = {g.options["weight_decay"]: set(g.names) for g in built.groups}
    assert by_decay == {
        1e-4: {"conv1.weight", "head.weight"},
        0.0: {"conv1.bias", "bn1.weight", "bn1.bias", "head.bias"},
    }


@pytest.mark.parametrize("name", ["grad_clip.py", "grad_clip_inherited.py"])
def test_clipping_snippets(name, conv_bn_head, mmcv):
    assert optiplug.build(mmcv.examples / name, conv_bn_head).recipe.clip == ClipConfig(max_norm=35.0, norm_type=2.0)


def test_accumulation_snippets_train_alike(mmcv):
    torch.manual_seed(0)
    template = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    x, y = torch.randn(512, 8), torch.randn(512, 1)

    def train(name):
        model = copy.deepcopy(template)
        per_gpu = load_pyfile(mmcv.examples / name)["data"]["samples_per_gpu"]
        built = optiplug.build(mmcv.examples / name, model, steps_per_epoch=512 // per_gpu, num_epochs=1)
        for start in range(0, 512, per_gpu):
            built.step(nn.functional.mse_loss(model(x[start : start + per_gpu]), y[start : start + per_gpu]))
        return model

    small, large = train("accumulate_64x4.py"), train("batch_256.py")
    for a, b in zip(small.parameters(), large.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_customized_optimizer_from_the_users_module(linear_model, mmcv):
    spec = importlib.util.spec_from_file_location(
        "my_optimizers", mmcv.examples / "custom_optimizer" / "my_optimizers.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["my_optimizers"] = module
    try:
        spec.loader.exec_module(module)
        built = optiplug.build(mmcv.examples / "custom_optimizer" / "config.py", linear_model, steps_per_epoch=2)
    finally:
        del sys.modules["my_optimizers"]
    assert type(built.optimizer).__name__ == "CustomizedOptim"
    before = linear_model.weight.detach().clone()
    built.step(linear_model(torch.ones(1, 3)).sum())
    expected = before * (1 - 0.01 * 1e-4) - 0.01  # the gradient is +1 everywhere
    torch.testing.assert_close(linear_model.weight.detach(), expected)
    assert [lr_at(built, i) for i in range(6)] == pytest.approx([0.01] * 4 + [0.001] * 2)
