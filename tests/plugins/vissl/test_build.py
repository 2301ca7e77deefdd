"""From a VISSL config to a stepping optimizer: the optimizer ClassyVision would build, LARC,
every example file, and whole training steps against a hand-written VISSL reference."""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml
from fvcore.common import param_scheduler as fv
from torch import nn

import optiplug


def build(optimizer: dict, model, **kwargs):
    return optiplug.build({"OPTIMIZER": optimizer}, model, steps_per_epoch=kwargs.pop("steps_per_epoch", 2), **kwargs)


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9, "nesterov": False, "dampening": 0}),
        ("adam", torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-08, "amsgrad": False}),
        ("adamw", torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-08, "amsgrad": False}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0.9, "alpha": 0.99, "eps": 1e-08, "centered": False}),
    ],
)
def test_classy_vision_optimizers_with_vissls_defaults(small, name, cls, expected):
    """VISSL's defaults.yaml supplies momentum 0.9, betas and weight_decay 1e-4 to every optimizer."""
    built = build({"name": name}, small)
    assert type(built.optimizer) is cls
    for group in built.optimizer.param_groups:
        assert {k: group[k] for k in expected} == expected
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0.0, 1e-4]


def test_lars_is_vissls_barlow_twins_lars(small):
    built = build({"name": "lars", "eta": 0.002, "exclude_bias_and_norm": True, "momentum": 0.8}, small)
    assert type(built.optimizer).__name__ == "VisslLARS"
    group = built.optimizer.param_groups[0]
    assert (group["eta"], group["exclude_bias_and_norm"], group["momentum"]) == (0.002, True, 0.8)


def test_optimizer_specific_keys_and_yaml_number_strings(small):
    """PyYAML reads ``1e-08`` as a string; OmegaConf (VISSL) reads a number: both work."""
    config = yaml.safe_load(
        "OPTIMIZER:\n  name: adam\n  eps: 1e-06\n  amsgrad: true\n  betas: [.8, .99]\n  weight_decay: 1e-5\n"
    )
    built = optiplug.build(config, nn.Linear(2, 2), steps_per_epoch=2)
    group = built.optimizer.param_groups[0]
    assert (group["eps"], group["amsgrad"], group["betas"], group["weight_decay"]) == (1e-06, True, (0.8, 0.99), 1e-05)


def test_any_registered_optimizer(small):
    built = build({"name": "Adagrad", "lr_decay": 0.01}, small)
    assert type(built.optimizer) is torch.optim.Adagrad
    assert built.optimizer.param_groups[0]["lr_decay"] == 0.01
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0.0, 1e-4]


def test_num_epochs_is_the_runs_length(small):
    cosine = {"param_schedulers": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}}}
    assert build({"num_epochs": 7, **cosine}, small, steps_per_epoch=3).clock.total_steps == 21
    assert build({"num_epochs": 7, **cosine}, small, steps_per_epoch=3, num_epochs=5).clock.total_steps == 15


def test_momentum_stays_constant(small, per_update):
    built = build(
        {"num_epochs": 2, "param_schedulers": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}}}, small
    )
    assert per_update(built, "momentum") == [[0.9] * 4] * len(built.optimizer.param_groups)


def test_use_larc_wraps_sgd_with_larc_config(small):
    built = build({"use_larc": True, "larc_config": {"clip": True, "eps": "1e-07", "trust_coefficient": 0.02}}, small)
    params = built.recipe.wrappers[0].params
    assert (built.recipe.wrappers[0].name, params.clip, params.eps, params.trust_coefficient) == (
        "larc",
        True,
        1e-07,
        0.02,
    )
    assert type(built.optimizer).__name__ == "LARC"
    assert (
        type(built.optimizer.optim if hasattr(built.optimizer, "optim") else built.optimizer.optimizer)
        is torch.optim.SGD
    )


def test_sgd_fsdp_uses_distributed_norms(small):
    built = build({"name": "sgd_fsdp", "use_larc": True}, small)
    assert built.recipe.wrappers[0].params.distributed_norm is True


# -- examples ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "optimizer.yaml",
        "head.yaml",
        "larc.yaml",
        "cosine.yaml",
        "multistep.yaml",
        "linear_warmup_cosine.yaml",
        "cosine_warm_restart.yaml",
        "linear_warmup_cosine_warm_restart.yaml",
        "multiple_linear_warmups_cosine.yaml",
        "auto_scaling.yaml",
    ],
)
def test_every_example_builds_and_steps(examples, trunk_head, name):
    built = optiplug.build(examples / name, trunk_head, steps_per_epoch=3, batch_size_per_device=32, world_size=8)
    assert built.recipe.optimizer.name == "SGD"
    for _ in range(4):
        built.optimizer.step()
        built.scheduler.step()
    assert all(g["lr"] > 0 for g in built.optimizer.param_groups)


@pytest.mark.parametrize(
    ("name", "optimizer", "wrappers", "groups"),
    [
        ("lr_decay_vit.yaml", "AdamW", [], 4),  # no blocks here: depth L (decayed or not) and the heads at L + 1
        ("linear_eval_heads.yaml", "SGD", [], 2),  # the trunk (and prototypes) at lr 0; heads.0 (regularize_bn)
        ("use_zero.yaml", "SGD", ["larc", "zero"], 1),
        ("rmsprop_tf.yaml", "rmsprop_tf", [], 2),
    ],
)
def test_the_other_examples_build_and_step(examples, trunk_head, name, optimizer, wrappers, groups):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "zero: torch.distributed is not initialized", optiplug.OptiplugWarning)
        built = optiplug.build(examples / name, trunk_head, steps_per_epoch=3)
    assert (built.recipe.optimizer.name, [w.name for w in built.recipe.wrappers]) == (optimizer, wrappers)
    assert len(built.optimizer.param_groups) == groups
    for _ in range(4):
        built.optimizer.step()
        built.scheduler.step()
    assert any(g["lr"] > 0 for g in built.optimizer.param_groups)


def test_larc_example_with_use_larc_on(examples, small):
    config = yaml.safe_load((examples / "larc.yaml").read_text())
    config["OPTIMIZER"]["use_larc"] = True
    params = optiplug.build(config, small, steps_per_epoch=2).recipe.wrappers[0].params
    assert (params.clip, params.eps, params.trust_coefficient) == (False, 1e-08, 0.001)


@pytest.mark.parametrize(("batch", "world", "first"), [(32, 8, 0.1), (64, 8, 0.2), (32, 32, 0.4)])
def test_auto_scaling_example(examples, small, batch, world, first):
    built = optiplug.build(
        examples / "auto_scaling.yaml", small, steps_per_epoch=2, batch_size_per_device=batch, world_size=world
    )
    assert built.recipe.schedules["lr"].params.values == pytest.approx([first, first / 10, first / 100])


def test_head_example_gives_the_head_the_trunks_values(examples, trunk_head):
    built = optiplug.build(examples / "head.yaml", trunk_head, steps_per_epoch=2)
    assert len(built.optimizer.param_groups) == 2


# -- whole steps against a hand-written VISSL run ------------------------------------------------------------------


def vissl_sgd_larc_run(model, batches, lrs, *, trust, eps, momentum=0.9, wd=1e-4):
    """SGD with apex LARC (scale mode, spec 4.1) and VISSL's default groups for a Linear + BatchNorm model."""
    decays = {id(model[0].weight): wd, id(model[0].bias): wd, id(model[1].weight): 0.0, id(model[1].bias): 0.0}
    buffers: dict[int, torch.Tensor] = {}
    for x, lr in zip(batches, lrs, strict=True):
        model.zero_grad()
        model(x).square().mean().backward()
        with torch.no_grad():
            for p in model.parameters():
                decay, g = decays[id(p)], p.grad.clone()
                pn, gn = p.norm(), g.norm()
                if pn != 0 and gn != 0:
                    g = (g + decay * p) * (trust * pn / (gn + pn * decay + eps))
                buffers[id(p)] = g if id(p) not in buffers else momentum * buffers[id(p)] + g
                p -= lr * buffers[id(p)]


def test_training_steps_match_a_hand_written_vissl_run():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    reference = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    reference.load_state_dict(model.state_dict())
    batches = [torch.randn(8, 3) for _ in range(6)]
    config = {
        "OPTIMIZER": {
            "num_epochs": 3,
            "use_larc": True,
            "param_schedulers": {
                "lr": {"name": "cosine", "start_value": 0.5, "end_value": 0.0, "update_interval": "step"}
            },
        }
    }
    built = optiplug.build(config, model, steps_per_epoch=2)
    for x in batches:
        built.step(model(x).square().mean())
    cosine = fv.CosineParamScheduler(0.5, 0.0)
    vissl_sgd_larc_run(reference, batches, [cosine(k / 6) for k in range(6)], trust=0.001, eps=1e-8)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_resume_continues_the_schedule(small, per_update):
    config = {"OPTIMIZER": {"num_epochs": 3, "param_schedulers": {"lr": {"name": "cosine", "update_interval": "step"}}}}
    straight = per_update(optiplug.build(config, small, steps_per_epoch=4))
    first = optiplug.build(config, small, steps_per_epoch=4)
    head = per_update(first, updates=5)
    second = optiplug.build(config, small, steps_per_epoch=4)
    second.load_state_dict(first.state_dict())
    tail = per_update(second, updates=7)
    assert [h + t for h, t in zip(head, tail, strict=True)] == straight
