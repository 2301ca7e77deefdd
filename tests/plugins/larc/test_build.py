"""LARC and LARS built from recipes: wiring, numbers, resume, and the config errors."""

from __future__ import annotations

import copy

import pytest
import torch

import optiplug
from optiplug import ConfigError
from optiplug_larc.larc import LARC
from optiplug_larc.lars import LARS

LARC_RECIPE = {
    "optimizer": {"name": "SGD", "lr": 0.4, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": [{"kind": "norm", "set": {"weight_decay": 0.0}}],
    "schedules": {"lr": {"name": "cosine", "start_value": 0.4, "end_value": 0.0}},
    "wrappers": [{"name": "larc", "trust_coefficient": 0.001, "clip": False}],
}

LARS_RECIPE = {
    "optimizer": {"name": "lars", "lr": 0.3, "momentum": 0.9, "weight_decay": 1e-2, "eta": 0.02},
    "rules": [{"kind": "ndim", "max": 1, "set": {"lars_exclude": True, "weight_decay": 0}}],
}


def losses(model: torch.nn.Module, batch: torch.Tensor, steps: int):
    for _ in range(steps):
        yield model(batch).square().mean()


def test_larc_wrapper_from_a_recipe(conv_bn_head, batch):
    built = optiplug.build(LARC_RECIPE, conv_bn_head, steps_per_epoch=4, num_epochs=2)
    larc = built.optimizer
    assert isinstance(larc, LARC) and isinstance(larc.optimizer, torch.optim.SGD)
    assert (larc.trust_coefficient, larc.clip, larc.eps) == (0.001, False, 1e-8)
    assert larc.param_groups is larc.optimizer.param_groups

    before = {name: p.detach().clone() for name, p in conv_bn_head.named_parameters()}
    built.step(next(losses(conv_bn_head, batch, 1)))
    for group in larc.param_groups:  # one SGD step from zero momentum: p - lr * a * (g + wd p)
        assert group["weight_decay"] in (1e-4, 0.0)
    for name, p in conv_bn_head.named_parameters():
        old = before[name]
        group = next(g for g in larc.param_groups if any(q is p for q in g["params"]))
        assert p.grad is None
        moved = (old - p.detach()).norm()
        # scale mode: the step's norm is lr * trust * ‖p‖ * ‖g + wd p‖ / (‖g‖ + wd ‖p‖ + eps) <= lr * trust * ‖p‖
        if old.norm() == 0:
            assert moved > 0.4 * 0.001, name  # zero weight (bn bias): a plain, unscaled SGD step
        else:
            assert 0 < moved <= 0.4 * 0.001 * old.norm() * (1 + 1e-6), name
        assert group["lr"] < 0.4  # the cosine moved on


def test_larc_resume_keeps_the_schedule_on_the_inner_groups(conv_bn_head, batch):
    """apex #766: after load_state_dict the scheduler must still reach the (new) inner groups."""
    straight = copy.deepcopy(conv_bn_head)
    built = optiplug.build(LARC_RECIPE, straight, steps_per_epoch=4, num_epochs=2)
    for loss in losses(straight, batch, 6):
        built.step(loss)

    first = copy.deepcopy(conv_bn_head)
    run = optiplug.build(LARC_RECIPE, first, steps_per_epoch=4, num_epochs=2)
    for loss in losses(first, batch, 3):
        run.step(loss)
    saved = copy.deepcopy(run.state_dict())

    resumed_model = copy.deepcopy(first)
    resumed = optiplug.build(LARC_RECIPE, resumed_model, steps_per_epoch=4, num_epochs=2)
    inner_groups_before = resumed.optimizer.optimizer.param_groups
    resumed.load_state_dict(saved)
    assert resumed.optimizer.optimizer.param_groups is not inner_groups_before  # torch replaced the list
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [g["lr"] for g in run.optimizer.param_groups]
    for loss in losses(resumed_model, batch, 3):
        resumed.step(loss)

    assert resumed.scheduler.last_epoch == built.scheduler.last_epoch == 6
    assert [g["lr"] for g in resumed.optimizer.optimizer.param_groups] == [
        g["lr"] for g in built.optimizer.optimizer.param_groups
    ]
    for a, b in zip(resumed_model.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_scheduler_counts_larc_steps_through_the_step_hook(conv_bn_head, batch):
    built = optiplug.build(LARC_RECIPE, conv_bn_head, steps_per_epoch=4, num_epochs=2)
    lrs = []
    for loss in losses(conv_bn_head, batch, 3):
        built.step(loss)
        lrs.append(built.optimizer.param_groups[0]["lr"])
    assert built.scheduler.last_epoch == 3
    assert lrs[0] > lrs[1] > lrs[2]


def test_lars_from_a_recipe_with_lars_exclude(conv_bn_head, batch):
    built = optiplug.build(LARS_RECIPE, conv_bn_head)
    lars = built.optimizer
    assert isinstance(lars, LARS) and lars.eps == 1e-8
    excluded = [g for g in lars.param_groups if g.get("lars_exclude")]
    assert len(excluded) == 1 and excluded[0]["weight_decay"] == 0
    assert {p.ndim for p in excluded[0]["params"]} == {1}
    assert all(p.ndim > 1 for g in lars.param_groups if g not in excluded for p in g["params"])

    # against the update written out for one step without momentum history: d = (g + wd p) * local * lr
    model = copy.deepcopy(conv_bn_head)
    model(batch).square().mean().backward()
    built.step(conv_bn_head(batch).square().mean())
    for (name, p), q in zip(conv_bn_head.named_parameters(), model.parameters(), strict=True):
        weight_decay = 0.0 if q.ndim == 1 else 1e-2
        local = 1.0
        if q.ndim > 1:
            w, g = q.detach().norm(), q.grad.norm()
            local = 0.02 * w / (g + weight_decay * w + 1e-8)
        expected = q.detach() - (q.grad + weight_decay * q.detach()) * local * 0.3
        torch.testing.assert_close(p.detach(), expected, msg=name)


def test_larc_around_lars_as_in_the_brief(conv_bn_head, batch):
    recipe = dict(LARS_RECIPE, wrappers=[{"name": "larc", "trust_coefficient": 0.001, "clip": False}])
    built = optiplug.build(recipe, conv_bn_head)
    assert isinstance(built.optimizer, LARC) and isinstance(built.optimizer.optimizer, LARS)
    built.step(conv_bn_head(batch).square().mean())
    assert [g["weight_decay"] for g in built.optimizer.param_groups] == [1e-2, 0]


def test_vissl_lars_by_name(conv_bn_head):
    recipe = {"optimizer": {"name": "VISSL_LARS", "lr": 0.2, "exclude_bias_and_norm": True}}
    built = optiplug.build(recipe, conv_bn_head)
    assert type(built.optimizer).__name__ == "VisslLARS"
    assert built.optimizer.param_groups[0]["exclude_bias_and_norm"] is True


@pytest.mark.parametrize(
    ("wrapper", "path", "words"),
    [
        ({"trust_coefficient": -0.001}, "wrappers[0].trust_coefficient", ["> 0", "-0.001"]),
        ({"trust_coefficient": 0}, "wrappers[0].trust_coefficient", ["> 0"]),
        ({"eps": -1.0}, "wrappers[0].eps", [">= 0", "-1.0"]),
        ({"clip": "yes"}, "wrappers[0].clip", ["'yes'"]),
        ({"trust_coeficient": 0.001}, "wrappers[0]", ["trust_coeficient", "trust_coefficient"]),
    ],
)
def test_larc_config_errors_name_the_path(conv_bn_head, wrapper, path, words):
    recipe = dict(LARC_RECIPE, wrappers=[{"name": "larc", **wrapper}])
    with pytest.raises(ConfigError) as info:
        optiplug.build(recipe, conv_bn_head, steps_per_epoch=4, num_epochs=2)
    assert info.value.path.startswith(path), info.value
    for word in words:
        assert word in str(info.value)


def test_unknown_wrapper_suggests_larc(conv_bn_head):
    recipe = dict(LARC_RECIPE, wrappers=[{"name": "lark"}])
    with pytest.raises(ConfigError, match="did you mean 'larc'"):
        optiplug.build(recipe, conv_bn_head, steps_per_epoch=4, num_epochs=2)


@pytest.mark.parametrize(
    ("options", "words"),
    [({"eta": -0.001}, ["eta", "-0.001"]), ({"momentum": 0.0, "nesterov": True}, ["nesterov", "momentum=0.0"])],
)
def test_lars_option_errors_name_the_option(conv_bn_head, options, words):
    recipe = {"optimizer": {"name": "LARS", "lr": 0.1, **options}}
    with pytest.raises(ConfigError) as info:
        optiplug.build(recipe, conv_bn_head)
    assert info.value.path.startswith("optimizer")
    for word in words:
        assert word in str(info.value)


def test_lars_unknown_option_is_refused_with_a_suggestion(conv_bn_head):
    with pytest.raises(ConfigError) as info:
        optiplug.build({"optimizer": {"name": "LARS", "lr": 0.1, "etta": 0.001}}, conv_bn_head)
    assert info.value.path == "optimizer.etta"
    assert "did you mean 'eta'" in str(info.value)


def test_bad_lars_option_from_a_rule(conv_bn_head):
    recipe = {"optimizer": {"name": "LARS", "lr": 0.1}, "rules": [{"kind": "norm", "set": {"eta": -1.0}}]}
    with pytest.raises(ConfigError) as info:
        optiplug.build(recipe, conv_bn_head)
    assert "eta" in str(info.value) and "-1.0" in str(info.value)


def test_larc_steps_through_a_grad_scaler(conv_bn_head, batch):
    plain_model = copy.deepcopy(conv_bn_head)
    built = optiplug.build(LARC_RECIPE, conv_bn_head, steps_per_epoch=4, num_epochs=2)
    plain = optiplug.build(LARC_RECIPE, plain_model, steps_per_epoch=4, num_epochs=2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**6)
    for loss, plain_loss in zip(losses(conv_bn_head, batch, 2), losses(plain_model, batch, 2), strict=True):
        assert built.step(loss, scaler)
        plain.step(plain_loss)
    assert built.scheduler.last_epoch == 2
    for a, b in zip(conv_bn_head.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)  # unscaled before LARC reads the norms
