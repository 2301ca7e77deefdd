"""The LRScheduler adapter: values before each update, resume, refusal of foreign states, AMP skips."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

import optiplug
from optiplug.engine.torch_scheduler import OptiplugScheduler

WARMUP_COSINE = {
    "name": "composite",
    "schedulers": [
        {"name": "linear", "start_value": 0.01, "end_value": 0.1},
        {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
    ],
    "lengths": [0.25, 0.75],
    "interval_scaling": ["rescaled", "fixed"],
}

CONFIG = {
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": [
        {"kind": "norm", "set": {"weight_decay": 0}},
        {"kind": "module_path", "prefix": "head", "set": {"lr_mult": 10}},
    ],
    "schedules": {
        "lr": WARMUP_COSINE,
        "momentum": {"name": "linear", "start_value": 0.85, "end_value": 0.95},
        "weight_decay": {"name": "cosine", "start_value": 1e-4, "end_value": 1e-3, "update_interval": "epoch"},
    },
}


def train(built, model, batch, updates):
    seen = []
    for _ in range(updates):
        seen.append([(g["lr"], g["momentum"], g["weight_decay"]) for g in built.optimizer.param_groups])
        built.step(model(batch).square().mean())
    return seen


def test_is_a_torch_lr_scheduler(conv_bn_head):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    assert isinstance(built.scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert built.scheduler.get_last_lr() == [g["lr"] for g in built.optimizer.param_groups]


def test_spec_table_values_before_each_update(conv_bn_head, batch):
    # spec vissl.md 3.5: composite linear 0.01->0.1 (rescaled, 0.25) + cosine 0.1->0 (fixed), 4 epochs x 5 steps
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    lrs = [row[0][0] for row in train(built, conv_bn_head, batch, 20)]
    assert lrs[:7] == pytest.approx([0.01, 0.028, 0.046, 0.064, 0.082, 0.085355, 0.079389], abs=1e-6)
    assert lrs[-1] == pytest.approx(0.000616, abs=1e-6)


def test_multipliers_fixed_values_and_epoch_interval(conv_bn_head, batch):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    rows = train(built, conv_bn_head, batch, 20)
    groups = built.optimizer.param_groups
    head = next(i for i, g in enumerate(built.groups) if "head.weight" in g.names)
    norm = next(i for i, g in enumerate(built.groups) if "bn1.weight" in g.names)
    trunk = next(i for i, g in enumerate(built.groups) if "conv1.weight" in g.names)
    assert len(groups) == 3
    for row in rows:
        assert row[head][0] == pytest.approx(10 * row[trunk][0], rel=1e-15)
        assert row[norm][2] == 0
    assert [r[trunk][1] for r in rows[:2]] == pytest.approx([0.85, 0.85 + 0.1 / 20])
    decays = [r[trunk][2] for r in rows]
    assert decays[:5] == [decays[0]] * 5 and decays[5] != decays[4]


@pytest.mark.parametrize("seed", range(3))
def test_resume_at_a_random_step_gives_the_identical_sequence(conv_bn_head, batch, seed):
    stop = random.Random(seed).randrange(1, 19)
    torch.manual_seed(0)
    reference_model = type(conv_bn_head)()
    full = optiplug.build(CONFIG, reference_model, steps_per_epoch=5, num_epochs=4)
    expected = train(full, reference_model, batch, 20)

    torch.manual_seed(0)
    model = type(conv_bn_head)()
    first = optiplug.build(CONFIG, model, steps_per_epoch=5, num_epochs=4)
    seen = train(first, model, batch, stop)
    state = {"built": first.state_dict(), "model": model.state_dict()}

    torch.manual_seed(123)
    resumed_model = type(conv_bn_head)()
    resumed_model.load_state_dict(state["model"])
    resumed = optiplug.build(CONFIG, resumed_model, steps_per_epoch=5, num_epochs=4)
    resumed.load_state_dict(state["built"])
    seen += train(resumed, resumed_model, batch, 20 - stop)
    assert seen == expected
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.parameters(), reference_model.parameters(), strict=True))


def test_a_state_from_another_recipe_or_run_is_refused(conv_bn_head):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    other = dict(CONFIG, schedules={"lr": {"name": "constant", "value": 0.1}})
    foreign = optiplug.build(other, conv_bn_head, steps_per_epoch=5, num_epochs=4).scheduler.state_dict()
    with pytest.raises(optiplug.StateError, match="saved from a different recipe"):
        built.scheduler.load_state_dict(foreign)
    longer = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=6, num_epochs=4).scheduler.state_dict()
    with pytest.raises(optiplug.StateError, match="saved from a run of another length: run.steps_per_epoch: 6 -> 5;"):
        built.scheduler.load_state_dict(longer)
    with pytest.raises(optiplug.StateError, match="not an optiplug scheduler state"):
        built.scheduler.load_state_dict({"last_epoch": 3})


def test_step_without_optimizer_step_does_not_advance(conv_bn_head):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    built.scheduler.step()
    assert built.scheduler.last_epoch == 0
    built.optimizer.step()
    built.scheduler.step()
    built.scheduler.step()
    assert built.scheduler.last_epoch == 1


def test_gradscaler_skipped_step_does_not_advance_the_schedule(conv_bn_head, batch):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    assert built.step(conv_bn_head(batch).mean(), scaler=scaler)
    assert built.scheduler.last_epoch == 1
    loss = conv_bn_head(batch).mean() * float("inf")
    assert not built.step(loss, scaler=scaler)
    assert built.scheduler.last_epoch == 1
    assert built.skipped_updates == 1
    assert built.step(conv_bn_head(batch).mean(), scaler=scaler)
    assert built.scheduler.last_epoch == 2


def test_momentum_schedule_drives_adam_beta1():
    model = nn.Linear(3, 1)
    config = {
        "optimizer": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99]},
        "schedules": {"momentum": {"name": "linear", "start_value": 0.8, "end_value": 0.9}},
    }
    built = optiplug.build(config, model, steps_per_epoch=10, num_epochs=1)
    assert built.optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    built.step(model(torch.ones(1, 3)).sum())
    assert built.optimizer.param_groups[0]["betas"] == pytest.approx((0.81, 0.99))


def test_unknown_option_is_a_config_error():
    config = {"optimizer": {"name": "adam"}, "schedules": {"nesterov_rate": {"name": "constant", "value": 1}}}
    with pytest.raises(
        optiplug.ConfigError, match="schedules.nesterov_rate: the optimizer has no option 'nesterov_rate'"
    ):
        optiplug.build(config, nn.Linear(2, 2), steps_per_epoch=2, num_epochs=2)


def test_steps_beyond_the_run_hold_the_last_value():
    model = nn.Linear(2, 1)
    config = {
        "optimizer": {"name": "sgd", "lr": 1.0},
        "schedules": {"lr": {"name": "linear", "start_value": 1.0, "end_value": 0.0}},
    }
    built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=1)
    for _ in range(5):
        built.step(model(torch.ones(1, 2)).sum())
    assert built.optimizer.param_groups[0]["lr"] == 0.0


def test_epoch_argument_is_refused(conv_bn_head):
    built = optiplug.build(CONFIG, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    assert isinstance(built.scheduler, OptiplugScheduler)
    with pytest.raises(TypeError, match="takes no epoch"):
        built.scheduler.step(3)


def test_groups_added_later_follow_the_schedule_scaled_by_their_values():
    trunk, added = nn.Linear(2, 2), nn.Linear(2, 1)
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(config, trunk, steps_per_epoch=4, num_epochs=1)
    built.step(trunk(torch.ones(1, 2)).sum())
    built.optimizer.add_param_group({"params": added.parameters(), "lr": 0.05})
    built.step(trunk(torch.ones(1, 2)).sum() + added(torch.ones(1, 2)).sum())
    trunk_lr, added_lr = (g["lr"] for g in built.optimizer.param_groups)
    assert trunk_lr == pytest.approx(0.05)
    assert added_lr == pytest.approx(0.025)
    assert len(built.scheduler.base_lrs) == 2


def test_gradscaler_skip_with_a_fused_optimizer_does_not_advance(conv_bn_head, batch):
    config = dict(CONFIG, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "fused": True})
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    assert built.step(conv_bn_head(batch).mean(), scaler=scaler)
    before = [p.detach().clone() for p in conv_bn_head.parameters()]
    assert not built.step(conv_bn_head(batch).mean() * float("inf"), scaler=scaler)
    assert built.scheduler.last_epoch == 1
    assert built.skipped_updates == 1
    assert all(torch.equal(a, b) for a, b in zip(before, conv_bn_head.parameters(), strict=True))
