"""MMCV's fp16 hooks' ``loss_scale`` as the recipe's ``loss_scale``: ``built.step(loss)`` scales as the hook does.

Reference: MMCV 1.x ``Fp16OptimizerHook`` (torch >= 1.6) ``__init__``: ``'dynamic'`` ->
``GradScaler()``; a float -> ``GradScaler(init_scale=s)`` and ``_scale_update_param = s``;
a dict -> ``GradScaler(**d)``; ``after_train_iter``: ``loss_scaler.scale(loss).backward();
loss_scaler.unscale_(optimizer); clip_grads; loss_scaler.step(optimizer);
loss_scaler.update(self._scale_update_param)``.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import optiplug
from optiplug import ConfigError, LossScaleConfig
from optiplug.tooling.conversion import converted_recipe, recipe_yaml

CONFIGS = Path(__file__).parent / "configs"
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)
INF_AT = (1, 4)


def config(**hook):
    return dict(
        optimizer=SGD,
        optimizer_config=dict(type="Fp16OptimizerHook", grad_clip=dict(max_norm=1.0), **hook),
        lr_config=dict(policy="fixed"),
        runner=dict(type="IterBasedRunner", max_iters=8),
    )


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))


def loss_at(model: nn.Module, i: int) -> torch.Tensor:
    loss = model(torch.linspace(-1, 1, 6).reshape(2, 3) * (i + 1)).pow(2).mean()
    return loss * float("inf") if i in INF_AT else loss


def fp16_optimizer_hook(model: nn.Module, loss_scale, iterations: int) -> list[float]:
    """MMCV's Fp16OptimizerHook (torch >= 1.6) around a torch SGD, as its code runs."""
    scale_update_param = None
    if loss_scale == "dynamic":
        scaler = torch.amp.GradScaler("cpu")
    elif isinstance(loss_scale, float):
        scale_update_param = loss_scale
        scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale)
    else:
        scaler = torch.amp.GradScaler("cpu", **loss_scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=False)
    scales = []
    for i in range(iterations):
        optimizer.zero_grad()
        scaler.scale(loss_at(model, i)).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm=1.0)
        scaler.step(optimizer)
        scaler.update(scale_update_param)
        scales.append(scaler.get_scale())
    return scales


@pytest.mark.parametrize("loss_scale", [512.0, "dynamic", {"init_scale": 16.0, "growth_interval": 2}])
def test_built_step_scales_as_fp16_optimizer_hook(loss_scale):
    model = net()
    reference = copy.deepcopy(model)
    cfg = config(loss_scale=loss_scale)
    cfg["optimizer"] = dict(SGD, foreach=False)
    built = optiplug.build(cfg, model)
    scales = []
    for i in range(8):
        built.step(loss_at(model, i))
        scales.append(built.loss_scaler.get_scale())
    assert scales == fp16_optimizer_hook(reference, loss_scale, 8)
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(got, want)
    assert built.skipped_updates == len(INF_AT)
    if loss_scale == 512.0:
        assert set(scales) == {512.0}


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (CONFIGS / "mmcls_fp16_static.py", LossScaleConfig(dynamic=False, init_scale=512.0)),
        (CONFIGS / "mmseg_fp16_hook.py", LossScaleConfig()),
        (CONFIGS / "mmselfsup_fp16_accum.py", LossScaleConfig(dynamic=False, init_scale=512.0)),
        (config(), LossScaleConfig(dynamic=False, init_scale=512.0)),  # the hook's default loss_scale=512.
        (
            config(loss_scale=dict(init_scale=8.0, growth_factor=4.0)),
            LossScaleConfig(init_scale=8.0, growth_factor=4.0),
        ),
        ({**config(), "optimizer_config": dict(grad_clip=None)}, None),
    ],
)
def test_the_hooks_loss_scale_is_the_recipes(cfg, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert optiplug.to_recipe(cfg, steps_per_epoch=4).loss_scale == expected


def test_the_canonical_recipe_carries_the_loss_scale_and_builds_the_same_scaler():
    recipe = converted_recipe(CONFIGS / "mmcls_fp16_static.py", steps_per_epoch=5)
    text = recipe_yaml(recipe)
    assert "loss_scale: {dynamic: false, init_scale: 512.0}" in text
    again = optiplug.to_recipe(yaml.safe_load(text))
    assert again.loss_scale == recipe.loss_scale == LossScaleConfig(dynamic=False, init_scale=512.0)


@pytest.mark.parametrize(
    ("cfg", "path", "words"),
    [
        (config(loss_scale=dict(init_scal=8.0)), "optimizer_config.loss_scale.init_scal", "did you mean 'init_scale'"),
        (config(loss_scale=dict(growth_factor=0.5)), "optimizer_config.loss_scale.growth_factor", "must be > 1"),
        (
            dict(
                optimizer=SGD,
                fp16=dict(loss_scale=dict(backoff_factor=2.0)),
                runner=dict(type="IterBasedRunner", max_iters=2),
            ),
            "fp16.loss_scale.backoff_factor",
            "in [0.0, 1.0)",
        ),
        (config(loss_scale="static"), "optimizer_config.loss_scale", "expected 'dynamic', a float > 0"),
    ],
)
def test_loss_scale_errors_name_the_config_key(cfg, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(cfg, net())
    assert caught.value.path == path
    assert words in str(caught.value)
