"""compute_curves: the per-update values of every option equal what the real scheduler writes."""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug.tooling.curves import Curves, compute_curves, run_updates

WARMUP_COSINE = {
    "name": "composite",
    "schedulers": [
        {"name": "linear", "start_value": 0.01, "end_value": 0.1},
        {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
    ],
    "lengths": [0.2, 0.8],
}

SGD_RECIPE = {
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": [
        {"kind": "norm", "set": {"weight_decay": 0}},
        {"kind": "regex", "pattern": r"^head\.", "set": {"lr_mult": 10}},
    ],
    "schedules": {
        "lr": WARMUP_COSINE,
        # exponential goes through torch.pow, whose vectorized and scalar kernels differ in the last bit
        "momentum": {"name": "exponential", "start_value": 0.95, "decay": 0.9},
        "weight_decay": {"name": "multistep", "values": [1e-4, 1e-5], "milestones": [3]},
    },
}

ADAM_RECIPE = {
    "optimizer": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.05},
    "rules": [{"kind": "bias", "set": {"weight_decay": 0}}],
    "schedules": {
        "lr": {"name": "cosine", "start_value": 1e-3, "end_value": 1e-5, "update_interval": "epoch"},
        "beta1": {"name": "linear", "start_value": 0.85, "end_value": 0.95},
    },
}


def stepped_values(built: optiplug.Built, option: str, steps: int) -> torch.Tensor:
    """(groups, steps): what each group holds before every update, stepping the real optimizer and scheduler."""
    rows = []
    for _ in range(steps):
        groups = built.optimizer.param_groups
        rows.append([g["betas"][0] if option == "beta1" else g[option] for g in groups])
        built.optimizer.step()  # no gradients: parameters stay, but the scheduler sees a step
        built.scheduler.step()
    return torch.tensor(rows, dtype=torch.float64).T


@pytest.mark.parametrize(
    ("recipe", "options"),
    [(SGD_RECIPE, ("lr", "momentum", "weight_decay")), (ADAM_RECIPE, ("lr", "beta1", "weight_decay"))],
    ids=["sgd", "adamw"],
)
def test_curves_equal_the_stepped_scheduler_including_past_the_end(conv_bn_head, recipe, options):
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=7, num_epochs=5)
    curves = compute_curves(built, num_steps=40)  # 35 updates in the run, 5 more clamped to its end
    assert set(options) <= set(curves.values)
    for option in options:
        fresh = optiplug.build(recipe, conv_bn_head, steps_per_epoch=7, num_epochs=5)
        assert torch.equal(curves.values[option], stepped_values(fresh, option, 40)), option


def test_curves_cross_the_scheduler_blocks_bit_for_bit(conv_bn_head):
    recipe = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "schedules": SGD_RECIPE["schedules"]}
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=1000, num_epochs=5)
    curves = compute_curves(built)
    fresh = optiplug.build(recipe, conv_bn_head, steps_per_epoch=1000, num_epochs=5)
    assert torch.equal(curves.values["momentum"], stepped_values(fresh, "momentum", 5000))


def test_curves_follow_the_written_formulas(conv_bn_head):
    """Independent check: linear warmup to 0.1 over 20% of 50 updates, cosine to 0 after; the head at 10x."""
    built = optiplug.build(SGD_RECIPE, conv_bn_head, steps_per_epoch=10, num_epochs=5)
    curves = compute_curves(built)
    k = torch.arange(50, dtype=torch.float64)
    w = k / 50
    warm = 0.1 * (w / 0.2) + 0.01 * (1 - w / 0.2)
    cool = 0.5 * 0.1 * (1 + torch.cos(math.pi * (w - 0.2) / 0.8))
    expected = torch.where(w < 0.2 - 1e-6, warm, cool)
    head = [g.index for g in built.groups if any("head" in r for r in g.rules)]
    trunk = [g.index for g in built.groups if g.index not in head]
    lr = curves.values["lr"]
    torch.testing.assert_close(lr[trunk], expected.expand(len(trunk), -1), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(lr[head], 10 * expected.expand(len(head), -1), rtol=1e-12, atol=1e-15)
    assert curves.values["momentum"][0, 0] == 0.95
    assert math.isclose(float(curves.values["momentum"][0, 25]), 0.95 * 0.9**0.5, rel_tol=1e-12)


def test_unscheduled_options_are_constant_at_the_group_value(conv_bn_head):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.8, "weight_decay": 1e-4},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=4, num_epochs=3)
    curves = compute_curves(built)
    assert curves.scheduled == {"lr"}
    assert curves.options == ["lr", "momentum", "weight_decay"]
    decay = {g.index: g.options["weight_decay"] for g in built.groups}
    for index, value in decay.items():
        assert torch.equal(curves.values["weight_decay"][index], torch.full((12,), float(value), dtype=torch.float64))
    assert torch.equal(curves.values["momentum"], torch.full((len(built.groups), 12), 0.8, dtype=torch.float64))


def test_distinct_merges_groups_with_equal_curves(conv_bn_head):
    built = optiplug.build(SGD_RECIPE, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    curves = compute_curves(built)
    lr_curves = curves.distinct("lr")
    assert len(lr_curves) == 2  # trunk (conv, norm) and head (10x)
    assert sorted(i for groups, _ in lr_curves for i in groups) == list(range(len(built.groups)))
    assert [len(groups) for groups, _ in curves.distinct("momentum")] == [len(built.groups)]


def test_a_million_updates_are_evaluated_in_blocks(conv_bn_head):
    built = optiplug.build(SGD_RECIPE, conv_bn_head, steps_per_epoch=10_000, num_epochs=100)
    curves = compute_curves(built)
    assert isinstance(curves, Curves)
    assert curves.values["lr"].shape == (len(built.groups), 1_000_000)
    assert curves.values["lr"].dtype == torch.float64
    built.scheduler.set_step(654_321)
    for index, group in enumerate(built.optimizer.param_groups):
        assert float(curves.values["lr"][index, 654_321]) == group["lr"]
        assert float(curves.values["momentum"][index, 654_321]) == group["momentum"]


def test_an_open_ended_run_needs_its_length(conv_bn_head):
    recipe = {"optimizer": {"name": "sgd", "lr": 0.1}}
    built = optiplug.build(recipe, conv_bn_head)
    with pytest.raises(optiplug.ConfigError, match="--epochs and --steps-per-epoch"):
        compute_curves(built)
    assert compute_curves(built, num_steps=3).values["lr"].tolist() == [[0.1, 0.1, 0.1]]
    with pytest.raises(optiplug.ConfigError, match="must be > 0, got 0"):
        compute_curves(built, num_steps=0)
    with pytest.raises(optiplug.ConfigError, match="open-ended"):
        run_updates(built.clock)
