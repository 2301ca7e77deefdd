"""MMCV's fp16 optimizer hooks: clipping and accumulation read, the loss scale as a GradScaler.

Reference: MMCV 1.x ``Fp16OptimizerHook`` (torch >= 1.6): ``'dynamic'`` -> ``GradScaler()``,
a float -> ``GradScaler(init_scale=s)`` with ``update(s)`` after each step, a dict ->
``GradScaler(**d)``; the train APIs of MMClassification / MMDetection build
``Fp16OptimizerHook(**optimizer_config, **fp16)``, MMSelfSup's ``GradAccumFp16OptimizerHook``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import optiplug
from optiplug import ConfigError
from optiplug_mmcv.fp16 import StaticGradScaler, grad_scaler

CONFIGS = Path(__file__).parent / "configs"
SGD = dict(type="SGD", lr=0.1, momentum=0.9)


def test_fp16_top_level_reads_the_clip_and_the_static_loss_scale():
    recipe = optiplug.to_recipe(CONFIGS / "mmcls_fp16_static.py", steps_per_epoch=5)
    assert recipe.clip is not None and recipe.clip.max_norm == 35.0
    assert recipe.loss_scale == optiplug.LossScaleConfig(dynamic=False, init_scale=512.0)
    assert recipe.accumulation.steps == 1


def test_mmselfsup_fp16_with_update_interval_accumulates():
    recipe = optiplug.to_recipe(CONFIGS / "mmselfsup_fp16_accum.py", steps_per_epoch=4)
    assert recipe.accumulation.steps == 2
    assert recipe.loss_scale == optiplug.LossScaleConfig(dynamic=False, init_scale=512.0)


def test_scalers_as_mmcv_makes_them():
    dynamic = grad_scaler(CONFIGS / "mmseg_fp16_hook.py", device="cpu")
    assert type(dynamic) is torch.amp.GradScaler and dynamic.get_scale() == 65536.0  # GradScaler()'s defaults
    static = grad_scaler(CONFIGS / "mmcls_fp16_static.py", device="cpu")
    assert isinstance(static, StaticGradScaler) and static.get_scale() == 512.0
    as_dict = grad_scaler(
        dict(
            optimizer=SGD,
            optimizer_config=dict(type="Fp16OptimizerHook", loss_scale=dict(init_scale=8.0, growth_interval=3)),
        ),
        device="cpu",
    )
    assert as_dict.get_scale() == 8.0 and as_dict.get_growth_interval() == 3
    assert grad_scaler(dict(optimizer=SGD, optimizer_config=dict(grad_clip=None))) is None
    default = grad_scaler(dict(optimizer=SGD, optimizer_config=dict(type="Fp16OptimizerHook")), device="cpu")
    assert default.get_scale() == 512.0  # Fp16OptimizerHook(loss_scale=512.)


def test_static_scale_through_built_step_skips_a_non_finite_step_and_keeps_its_scale(linear_model):
    config = CONFIGS / "mmcls_fp16_static.py"
    built = optiplug.build(config, linear_model, steps_per_epoch=5)
    scaler = grad_scaler(config, device="cpu")
    x = torch.ones(1, 3)
    before = [p.detach().clone() for p in linear_model.parameters()]
    built.step(linear_model(x).sum() * float("inf"), scaler)
    assert all(torch.equal(a, p) for a, p in zip(before, linear_model.parameters(), strict=True))
    assert scaler.get_scale() == 512.0  # a dynamic scaler would have halved it

    torch.manual_seed(0)
    reference = torch.nn.Linear(3, 1)
    reference.load_state_dict(linear_model.state_dict())
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=0.0001)
    built.step(linear_model(x).sum(), scaler)
    reference(x).sum().backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 35.0)
    plain.step()
    for got, want in zip(linear_model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7)
    assert scaler.get_scale() == 512.0


@pytest.mark.parametrize(
    ("config", "path", "words"),
    [
        (dict(optimizer=SGD, fp16=dict(loss_scale=512)), "optimizer_config.loss_scale", "MMCV refuses an int"),
        (dict(optimizer=SGD, fp16=dict(loss_scal=512.0)), "fp16.loss_scal", "did you mean 'loss_scale'"),
        (dict(optimizer=SGD, fp16="yes"), "fp16", "expected dict(loss_scale=...)"),
        (
            dict(optimizer=SGD, optimizer_config=dict(type="OptimizerHook"), fp16=dict(loss_scale=512.0)),
            "optimizer_config.type",
            "takes no 'type'",
        ),
        (
            dict(optimizer=SGD, optimizer_config=dict(type="Fp16OptimizerHook", update_interval=2)),
            "optimizer_config.update_interval",
            "Fp16OptimizerHook takes no 'update_interval'",
        ),
    ],
)
def test_fp16_errors(config, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.to_recipe(config)
    assert caught.value.path == path
    assert words in str(caught.value)
