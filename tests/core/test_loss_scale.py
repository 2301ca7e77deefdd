"""The recipe's ``loss_scale``: Built owns the GradScaler, against torch.amp.GradScaler driven by hand.

Reference for a dynamic scale: ``scaler.scale(loss).backward(); scaler.unscale_(opt);
clip; scaler.step(opt); scaler.update(); opt.zero_grad()`` with torch's own GradScaler.
A static scale: MMCV 1.x's ``LossScaler(mode='static')`` (``mmcv/runner/fp16_utils.py``):
the loss times the scale, an update with inf/NaN gradients skipped, the gradients
divided by the scale before clipping, the scale never changed.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError, LossScaleConfig

BAD_STEPS = (2, 5)
"""The updates whose loss is multiplied by inf: their gradients are not finite."""


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))


def loss_at(net: nn.Module, i: int) -> torch.Tensor:
    x = torch.linspace(-1.0, 1.0, 8).reshape(2, 4) * (1 + i / 7)
    loss = net(x).pow(2).mean()
    return loss * float("inf") if i in BAD_STEPS else loss


def recipe(loss_scale: dict | None, **extra) -> dict:
    return {
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "foreach": False},
        "clip": {"max_norm": 0.5},
        "loss_scale": loss_scale,
        "run": {"num_epochs": 1, "steps_per_epoch": 10},
        **extra,
    }


def by_hand(net: nn.Module, scaler: torch.amp.GradScaler, steps: int) -> list[float]:
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, foreach=False)
    scales = []
    for i in range(steps):
        scaler.scale(loss_at(net, i)).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        scales.append(scaler.get_scale())
    return scales


def test_a_dynamic_scale_equals_torchs_grad_scaler_driven_by_hand():
    config = {"init_scale": 8.0, "growth_factor": 4.0, "backoff_factor": 0.25, "growth_interval": 2}
    net, reference = model(), model()
    built = optiplug.build(recipe(config), net)
    scales = []
    for i in range(8):
        built.step(loss_at(net, i))
        scales.append(built.loss_scaler.get_scale())
    want = by_hand(reference, torch.amp.GradScaler("cpu", **config), 8)
    assert scales == want
    assert scales[:3] == [8.0, 32.0, 8.0]  # grows after 2 finite updates, backs off on the inf one
    for got, expected in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(got, expected)
    assert built.skipped_updates == len(BAD_STEPS)


def mmcv_static_loss_scaler_run(net: nn.Module, scale: float, steps: int) -> None:
    """MMCV's LossScaler(mode='static') as its fp16 hook drives it (torch < 1.6 branch)."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, foreach=False)
    for i in range(steps):
        (loss_at(net, i) * scale).backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        has_overflow = any(not torch.isfinite(g).all() for g in grads)
        if not has_overflow:
            for g in grads:
                g.div_(scale)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            optimizer.step()
        optimizer.zero_grad()


def test_a_static_scale_equals_mmcvs_static_loss_scaler():
    net, reference = model(), model()
    built = optiplug.build(recipe({"dynamic": False, "init_scale": 512.0}), net)
    for i in range(8):
        built.step(loss_at(net, i))
        assert built.loss_scaler.get_scale() == 512.0
    mmcv_static_loss_scaler_run(reference, 512.0, 8)
    for got, expected in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(got, expected)
    assert built.skipped_updates == len(BAD_STEPS)


def test_the_scaler_state_is_in_the_checkpoint_and_resumes():
    config = {"init_scale": 8.0, "growth_interval": 3}
    net = model()
    built = optiplug.build(recipe(config), net)
    for i in range(4):
        built.step(loss_at(net, i))
    state = copy.deepcopy(built.state_dict())
    assert state["loss_scaler"]["scale"] == built.loss_scaler.get_scale() == 4.0  # backed off at update 2
    assert state["loss_scaler"]["_growth_tracker"] == 1
    again = copy.deepcopy(net)
    resumed = optiplug.build(recipe(config), again)
    resumed.load_state_dict(state)
    for i in range(4, 9):
        built.step(loss_at(net, i))
        resumed.step(loss_at(again, i))
        assert resumed.loss_scaler.get_scale() == built.loss_scaler.get_scale()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters(), strict=True))


def test_an_explicit_scaler_wins_over_the_recipes():
    net = model()
    built = optiplug.build(recipe({"init_scale": 8.0}), net)
    mine = torch.amp.GradScaler("cpu", init_scale=2.0)
    built.step(loss_at(net, 0), mine)
    assert mine.get_scale() == 2.0 and mine._scale is not None  # used
    assert built.loss_scaler.get_scale() == 8.0 and built.loss_scaler._scale is None  # never used


def test_without_loss_scale_or_disabled_there_is_no_scaler_and_the_build_is_unchanged():
    net, reference = model(), model()
    plain = optiplug.build(recipe(None), net)
    off = optiplug.build(recipe({"enabled": False}), reference)
    assert plain.loss_scaler is None and off.loss_scaler is None
    assert "loss_scaler" in plain.state_dict() and plain.state_dict()["loss_scaler"] is None
    with pytest.warns(optiplug.OptiplugWarning, match="not finite"):
        for i in range(4):
            plain.step(loss_at(net, i))
            off.step(loss_at(reference, i))
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), reference.parameters(), strict=True))


def test_the_section_round_trips_through_the_canonical_form():
    built = optiplug.build(recipe({"dynamic": False, "init_scale": 128.0}), model())
    data = optiplug.engine.structuring.unstructure_recipe(built.recipe, optiplug.get_registry())
    assert data["loss_scale"]["dynamic"] is False and data["loss_scale"]["init_scale"] == 128.0
    assert optiplug.to_recipe(data).loss_scale == LossScaleConfig(dynamic=False, init_scale=128.0)


@pytest.mark.parametrize(
    ("section", "path", "words"),
    [
        ({"growth_factor": 1.0}, "loss_scale.growth_factor", "must be > 1"),
        ({"backoff_factor": 1.0}, "loss_scale.backoff_factor", "in [0.0, 1.0)"),
        ({"backoff_factor": 0}, "loss_scale.backoff_factor", "> 0"),
        ({"init_scale": -2}, "loss_scale.init_scale", "> 0"),
        ({"growth_interval": 0}, "loss_scale.growth_interval", "> 0"),
        ({"init_scal": 8.0}, "loss_scale", "init_scal"),
        ({"dynamic": "static"}, "loss_scale.dynamic", "static"),
    ],
)
def test_bad_sections_name_their_path(section, path, words):
    with pytest.raises(ConfigError) as info:
        optiplug.build(recipe(section), model())
    assert info.value.path.startswith(path) and words in str(info.value)
