"""AmpOptimWrapper's ``loss_scale`` as the recipe's ``loss_scale``, applied by ``built.step(loss)``.

Reference: MMEngine 0.10 ``AmpOptimWrapper.__init__``: ``'dynamic'`` (default) ->
``GradScaler()``; a float -> ``GradScaler(init_scale=s)`` with ``_scale_update_param = s``;
a dict -> ``GradScaler(**d)``; ``step``: ``unscale_`` (for clipping), ``loss_scaler.step``,
``loss_scaler.update(self._scale_update_param)``; its ``state_dict`` holds ``loss_scaler``.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError, LossScaleConfig


def config(**wrapper):
    return {
        "optim_wrapper": {
            "type": "AmpOptimWrapper",
            "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9, "foreach": False},
            **wrapper,
        },
        "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 6},
    }


def to_recipe(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optiplug.to_recipe(cfg)


@pytest.mark.parametrize(
    ("wrapper", "expected"),
    [
        ({}, LossScaleConfig()),
        ({"loss_scale": "dynamic"}, LossScaleConfig()),
        ({"loss_scale": 1024.0}, LossScaleConfig(dynamic=False, init_scale=1024.0)),
        ({"loss_scale": {"init_scale": 8.0, "growth_interval": 5}}, LossScaleConfig(init_scale=8.0, growth_interval=5)),
        ({"type": "OptimWrapper"}, None),
    ],
)
def test_the_wrappers_loss_scale_is_the_recipes(wrapper, expected):
    assert to_recipe(config(**wrapper)).loss_scale == expected


def test_built_step_runs_amp_optim_wrappers_static_scale():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    reference = copy.deepcopy(model)
    with pytest.warns(optiplug.OptiplugWarning, match="autocast"):
        built = optiplug.build(config(loss_scale=256.0), model)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, foreach=False)
    for i in range(6):
        factor = float("inf") if i == 2 else 1.0
        x = torch.full((2, 3), float(i + 1))
        built.step(model(x).pow(2).mean() * factor)
        scaler.scale(reference(x).pow(2).mean() * factor).backward()
        scaler.unscale_(optimizer)
        scaler.step(optimizer)
        scaler.update(256.0)
        optimizer.zero_grad()
        assert built.loss_scaler.get_scale() == scaler.get_scale() == 256.0
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    assert built.state_dict()["loss_scaler"] == scaler.state_dict()


@pytest.mark.parametrize(
    ("loss_scale", "path", "words"),
    [
        (512, "optim_wrapper.loss_scale", "a float, a dict or 'dynamic'"),
        ({"init_scal": 2.0}, "optim_wrapper.loss_scale.init_scal", "did you mean 'init_scale'"),
        ({"growth_factor": 1.0}, "optim_wrapper.loss_scale.growth_factor", "must be > 1"),
        (-1.0, "optim_wrapper.loss_scale", "finite float > 0"),
    ],
)
def test_bad_loss_scales_name_the_key(loss_scale, path, words):
    with pytest.raises(ConfigError) as caught:
        to_recipe(config(loss_scale=loss_scale))
    assert caught.value.path == path and words in str(caught.value)
