"""lr_config policies OpenMMLab frameworks register: MMDetection's YOLOX, MMClassification's CosineAnnealingCooldown.

The reference below is written from MMDetection 2.28.2's ``YOLOXLrUpdaterHook`` and
MMClassification 0.25.0's ``CosineAnnealingCooldownLrUpdaterHook`` on top of MMCV 1.x's
``LrUpdaterHook`` timing: scalar Python floats, hook state kept between calls, the
runner's call order. Nothing here uses optiplug's schedule code.
"""

from __future__ import annotations

import math
import textwrap
from types import SimpleNamespace

import pytest
import torch

import optiplug
from optiplug import ConfigError

L, E = 10, 6
T = L * E
BASES = [0.1, 0.02]


def annealing_cos(start, end, factor, weight=1):
    cos_out = math.cos(math.pi * factor) + 1
    return end + 0.5 * weight * (start - end) * cos_out


class Hook:
    """MMCV's LrUpdaterHook with a policy's get_lr (and, for YOLOX, its get_warmup_lr)."""

    def __init__(self, policy, by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.1, warmup_by_epoch=False,
                 min_lr=None, min_lr_ratio=None, **policy_args):  # fmt: skip
        self.policy, self.args = policy, policy_args
        self.by_epoch, self.warmup, self.warmup_ratio = by_epoch, warmup, warmup_ratio
        self.min_lr, self.min_lr_ratio = min_lr, min_lr_ratio
        self.warmup_epochs = warmup_iters if warmup_by_epoch else None
        self.warmup_iters = None if warmup_by_epoch else warmup_iters

    def get_lr(self, runner, base_lr):
        progress, max_progress = (runner.epoch, runner.max_epochs) if self.by_epoch else (runner.iter, runner.max_iters)
        target_lr = base_lr * self.min_lr_ratio if self.min_lr_ratio is not None else self.min_lr
        if self.policy == "YOLOX":
            last_iter = runner.loader_len * self.args["num_last_epochs"]
            progress += 1
            if progress >= max_progress - last_iter:
                return target_lr
            return annealing_cos(
                base_lr, target_lr, (progress - self.warmup_iters) / (max_progress - self.warmup_iters - last_iter)
            )
        cool_down_time = self.args.get("cool_down_time", 10)
        if progress > max_progress - cool_down_time:
            return target_lr * self.args.get("cool_down_ratio", 0.1)
        max_progress = max_progress - cool_down_time
        return annealing_cos(base_lr, target_lr, progress / max_progress)

    def get_warmup_lr(self, cur_iters, regular_lr):
        if self.policy == "YOLOX":
            k = self.warmup_ratio * pow((cur_iters + 1) / float(self.warmup_iters), 2)
            return [lr * k for lr in regular_lr]
        if self.warmup == "constant":
            return [lr * self.warmup_ratio for lr in regular_lr]
        if self.warmup == "linear":
            k = (1 - cur_iters / self.warmup_iters) * (1 - self.warmup_ratio)
            return [lr * (1 - k) for lr in regular_lr]
        k = self.warmup_ratio ** (1 - cur_iters / self.warmup_iters)
        return [lr * k for lr in regular_lr]


def simulate(policy, **hook_args):
    """Each group's lr before each iteration of an EpochBasedRunner of E epochs of L iterations."""
    hook = Hook(policy, **hook_args)
    trace, values, regular = [], list(BASES), list(BASES)
    for epoch in range(E):
        runner = SimpleNamespace(epoch=epoch, iter=epoch * L, max_epochs=E, max_iters=T, loader_len=L)
        if hook.warmup_iters is None:  # before_train_epoch
            hook.warmup_iters = hook.warmup_epochs * L
        if hook.by_epoch:
            regular = [hook.get_lr(runner, b) for b in BASES]
            values = list(regular)
        for j in range(L):
            i = runner.iter = epoch * L + j
            if not hook.by_epoch:
                regular = [hook.get_lr(runner, b) for b in BASES]
                use_warmup = hook.warmup is not None and i < hook.warmup_iters
                values = hook.get_warmup_lr(i, regular) if use_warmup else regular
            elif hook.warmup is not None and i <= hook.warmup_iters:
                values = regular if i == hook.warmup_iters else hook.get_warmup_lr(i, regular)
            trace.append(list(values))
    return trace


def build(lr_config, model, **build_args):
    config = dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, paramwise_cfg=dict(bias_lr_mult=0.2)),
        lr_config=lr_config,
        runner=dict(type="EpochBasedRunner", max_epochs=E),
    )
    return optiplug.build(config, model, steps_per_epoch=L, **build_args)


def record(built, model, iterations=T):
    x = torch.ones(1, model.in_features)
    trace = []
    for _ in range(iterations):
        trace.append([g["lr"] for g in built.optimizer.param_groups])
        built.step(model(x).sum())
    return trace


CASES = {
    # MMDetection's yolox_s_8x8_300e_coco.py, shrunk: 1 warmup epoch, 2 last epochs, per iteration
    "yolox-coco": dict(
        policy="YOLOX", warmup="exp", by_epoch=False, warmup_by_epoch=True, warmup_ratio=1, warmup_iters=1,
        num_last_epochs=2, min_lr_ratio=0.05,
    ),
    "yolox-iters-linear-minlr": dict(
        policy="YOLOX", warmup="linear", by_epoch=False, warmup_iters=7, warmup_ratio=0.5, num_last_epochs=1,
        min_lr=1e-3,
    ),
    "yolox-by-epoch": dict(
        policy="YOLOX", warmup="exp", warmup_iters=12, warmup_ratio=1, num_last_epochs=0, min_lr_ratio=0.05,
    ),
    "yolox-no-warmup": dict(policy="YOLOX", by_epoch=False, num_last_epochs=1, min_lr_ratio=0.1),
    "cooldown-by-epoch": dict(policy="CosineAnnealingCooldown", min_lr_ratio=0.01, cool_down_time=2),
    "cooldown-iters-warmup": dict(
        policy="CosineAnnealingCooldown", by_epoch=False, min_lr=1e-4, cool_down_time=15, cool_down_ratio=0.5,
        warmup="linear", warmup_iters=5, warmup_ratio=0.25,
    ),
    "cooldown-exp-warmup-by-epoch": dict(
        policy="CosineAnnealingCooldown", min_lr=1e-5, cool_down_time=1, warmup="exp", warmup_iters=1,
        warmup_by_epoch=True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("lr_config", list(CASES.values()), ids=list(CASES))
def test_every_iteration_matches_the_hooks(lr_config, linear_model):
    got = record(build(lr_config, linear_model), linear_model)
    expected = simulate(**lr_config)
    assert len(got) == T
    for i, (row, want) in enumerate(zip(got, expected, strict=True)):
        assert row == pytest.approx(want, rel=1e-12, abs=1e-15), f"iteration {i}"


def test_yolox_hand_values(linear_model):
    # by_epoch=False, W = 10 (1 epoch), last = 20 iterations of 60: cosine over (i + 1 - 10) / 30.
    lr_config = CASES["yolox-coco"]
    got = [row[0] for row in record(build(lr_config, linear_model), linear_model)]
    assert got[0] == pytest.approx(0.1 * annealing_cos(1, 0.05, (1 - 10) / 30) * (1 / 10) ** 2, rel=1e-12)
    assert got[9] == pytest.approx(0.1 * annealing_cos(1, 0.05, 0 / 30), rel=1e-12)  # warmup's end: the full lr
    assert got[10] == pytest.approx(0.1 * annealing_cos(1, 0.05, 1 / 30), rel=1e-12)
    assert got[38] == pytest.approx(0.1 * annealing_cos(1, 0.05, 29 / 30), rel=1e-12)
    assert got[39:] == pytest.approx([0.005] * 21, rel=1e-12)  # q = 40 >= 60 - 20: the floor


def test_cooldown_epoch_boundaries(linear_model):
    # E = 6, cool_down_time = 2: cosine over epochs 0..4 (p / 4), then 0.001 * 0.1 in epoch 5 only.
    got = [row[0] for row in record(build(CASES["cooldown-by-epoch"], linear_model), linear_model)]
    per_epoch = [got[e * L] for e in range(E)]
    assert all(got[e * L : (e + 1) * L] == [per_epoch[e]] * L for e in range(E))
    assert per_epoch[:5] == pytest.approx([annealing_cos(0.1, 0.001, e / 4) for e in range(5)], rel=1e-12)
    assert per_epoch[4] == pytest.approx(0.001, rel=1e-12)
    assert per_epoch[5] == pytest.approx(1e-4, rel=1e-12)


def test_from_a_py_config(tmp_path, linear_model):
    path = tmp_path / "yolox.py"
    path.write_text(
        textwrap.dedent(
            """
            optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
            optimizer_config = dict(grad_clip=None)
            max_epochs = 6
            num_last_epochs = 2
            lr_config = dict(
                _delete_=True,
                policy='YOLOX',
                warmup='exp',
                by_epoch=False,
                warmup_by_epoch=True,
                warmup_ratio=1,
                warmup_iters=1,
                num_last_epochs=num_last_epochs,
                min_lr_ratio=0.05)
            runner = dict(type='EpochBasedRunner', max_epochs=max_epochs)
            """
        )
    )
    built = optiplug.build(path, linear_model, steps_per_epoch=L)
    got = record(built, linear_model)
    expected = [row[0] / 10 for row in simulate(**CASES["yolox-coco"])]  # lr 0.01 instead of 0.1: linear in the lr
    assert [row[0] for row in got] == pytest.approx(expected, rel=1e-12)
    assert got[-1][0] == pytest.approx(0.01 * 0.05, rel=1e-12)


def test_recipe_schedule_names(linear_model):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {
            "lr": {"name": "mmcv_cosine_annealing_cooldown", "min_lr": 0.0, "cool_down_time": 2, "by_epoch": False}
        },
    }
    built = optiplug.build(recipe, linear_model, steps_per_epoch=L, num_epochs=1)
    got = [row[0] for row in record(built, linear_model, L)]
    assert got[:9] == pytest.approx([annealing_cos(0.1, 0.0, i / 8) for i in range(9)], rel=1e-12)
    assert got[9] == 0.0


@pytest.mark.parametrize(
    ("lr_config", "path", "words"),
    [
        (dict(policy="YOLOX", min_lr_ratio=0.05), "lr_config.num_last_epochs", "num_last_epochs"),
        (dict(policy="YOLOX", num_last_epochs=1), "lr_config.min_lr", "exactly one of min_lr and min_lr_ratio"),
        (dict(policy="YOLOX", num_last_epochs=-1, min_lr=0), "lr_config.num_last_epochs", "-1"),
        (dict(policy="YOLOX", num_last_epochs=1, min_lr=0, warmup_itres=3), "lr_config.warmup_itres", "did you mean"),
        (
            dict(policy="YOLOX", num_last_epochs=5, min_lr=0, warmup="exp", warmup_iters=10, by_epoch=False),
            "lr_config.num_last_epochs",
            "divides by zero",
        ),
        (
            dict(policy="CosineAnnealingCooldown", min_lr=0, min_lr_ratio=0.1),
            "lr_config.min_lr",
            "both",
        ),
        (dict(policy="CosineAnnealingCooldown", min_lr=0, cool_down_time=6), "lr_config.cool_down_time", "zero"),
        (dict(policy="CosineAnnealingCooldown", min_lr=0, cooldown_time=2), "lr_config.cooldown_time", "did you"),
    ],
)
def test_errors_name_the_lr_config_path(lr_config, path, words, linear_model):
    with pytest.raises(ConfigError) as caught:
        build(lr_config, linear_model)
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)
