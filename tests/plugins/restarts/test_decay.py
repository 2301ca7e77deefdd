"""``normalized_decay``: weight_decay = lambda_norm * eta_t * sqrt(b / (B * T)), computed here by hand."""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug.engine.schedules import evaluate
from optiplug.engine.structuring import parse_recipe
from optiplug.plugin_system.records import Clock


def schedule(mapping):
    return parse_recipe({"schedules": {"x": mapping}}, optiplug.get_registry()).schedules["x"]


def cos_shape(u):
    return 0.5 * (1 + math.cos(math.pi * u))


def ceil_periods(period, t_mult, n=50):
    lengths = [math.ceil(period)]
    while len(lengths) < n:
        lengths.append(math.ceil(lengths[-1] * t_mult))
    return lengths


def period_at(lengths, epochs):
    start = 0
    for i, length in enumerate(lengths):
        if epochs < start + length:
            return i, epochs - start, length
        start += length
    raise AssertionError("too few periods")


def test_adamwr_normalizer_numbers_from_the_spec():
    # b=2, B=8, T=2 gives 0.3536, and after the restart to T=4 it is 0.25 (at the peak, eta = 1)
    restarts = {"name": "restarts", "period_epochs": 2, "t_mult": 2}
    mapping = {"name": "normalized_decay", "batch_size": 2, "epoch_size": 8, "schedule": restarts}
    values = evaluate(schedule(mapping), Clock(4, None), optiplug.get_registry(), [0, 8], base=1.0).tolist()
    assert values == pytest.approx([math.sqrt(2 / 16), 0.25])


def test_follows_the_restarts_multiplier_and_period():
    restarts = {"name": "restarts", "period_epochs": 1.2, "t_mult": 1.7, "rounding": "ceil", "min_value": 1e-3}
    mapping = {"name": "normalized_decay", "batch_size": 32, "epoch_size": 1000, "schedule": restarts}
    per_epoch, total = 32, 32 * 20  # ceil(1000 / 32) batches per epoch
    values = evaluate(schedule(mapping), Clock(per_epoch, float(total)), optiplug.get_registry(), base=0.05).tolist()
    lengths = ceil_periods(1.2, 1.7)
    want = []
    for k in range(total):
        _, elapsed, length = period_at(lengths, k / per_epoch)
        want.append(0.05 * cos_shape(elapsed / length) * math.sqrt(32 / (1000 * length)))
    assert values == pytest.approx(want, rel=1e-12, abs=1e-18)


def test_default_batch_ratio_is_one_update_per_epoch_fraction():
    mapping = {"name": "normalized_decay", "schedule": {"name": "restarts", "period_epochs": 3}}
    values = evaluate(schedule(mapping), Clock(5, 30.0), optiplug.get_registry(), [0], base=0.1).tolist()
    assert values == pytest.approx([0.1 * math.sqrt(1 / (5 * 3))])


def test_a_schedule_without_restarts_uses_the_run_as_the_period():
    # Loshchilov & Hutter without restarts: T = the whole run (here 10 epochs)
    cosine = {"name": "cosine", "start_value": 1.0, "end_value": 0.0}
    mapping = {"name": "normalized_decay", "batch_size": 4, "epoch_size": 40, "schedule": cosine}
    values = evaluate(schedule(mapping), Clock(10, 100.0), optiplug.get_registry(), [0, 50], base=0.2).tolist()
    assert values == pytest.approx([0.2 * math.sqrt(4 / 400), 0.2 * 0.5 * math.sqrt(4 / 400)])


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))


def test_recipe_adamw_cosine_restarts_t_mult_normalized_decay():
    """The issue's recipe: AdamW (paper convention) + cosine restarts with t_mult + normalized decay."""
    restarts = {"name": "restarts", "period_epochs": 2, "t_mult": 1.5, "rounding": "ceil", "min_value": 1e-6}
    config = {
        "optimizer": {"name": "adamwr", "lr": 1e-3, "weight_decay": 0.05},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}, {"kind": "bias", "set": {"weight_decay": 0}}],
        "schedules": {
            "lr": restarts,
            "weight_decay": {"name": "normalized_decay", "batch_size": 16, "epoch_size": 128, "schedule": restarts},
        },
    }
    per_epoch = 8
    built = optiplug.build(config, model(), steps_per_epoch=per_epoch, num_epochs=12)
    decayed = [g for g in built.optimizer.param_groups if g["weight_decay"] > 0]
    plain = [g for g in built.optimizer.param_groups if g["weight_decay"] == 0]
    assert len(decayed) == 1 and len(plain) == 1
    lengths = ceil_periods(2, 1.5)
    for k in range(per_epoch * 12):
        _, elapsed, length = period_at(lengths, k / per_epoch)
        eta = cos_shape(elapsed / length)
        assert decayed[0]["lr"] == pytest.approx(1e-6 + (1e-3 - 1e-6) * eta, rel=1e-12)
        assert decayed[0]["weight_decay"] == pytest.approx(0.05 * eta * math.sqrt(16 / (128 * length)), rel=1e-12)
        assert plain[0]["weight_decay"] == 0.0
        built.optimizer.step()
        built.scheduler.step()


def test_yaml_anchor_shares_the_lr_schedule(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "optimizer: {name: adamwr, lr: 0.001, weight_decay: 0.025}\n"
        "schedules:\n"
        "  lr: &restarts {name: restarts, period_epochs: 5, t_mult: 1.2, rounding: ceil, min_value: 1.0e-7}\n"
        "  weight_decay: {name: normalized_decay, batch_size: 32, epoch_size: 1024, schedule: *restarts}\n"
    )
    built = optiplug.build(str(path), model(), steps_per_epoch=32, num_epochs=30)
    group = built.optimizer.param_groups[0]
    assert group["weight_decay"] == pytest.approx(0.025 * math.sqrt(32 / (1024 * 5)))


@pytest.mark.parametrize(
    ("mapping", "path", "words"),
    [
        ({"name": "normalized_decay"}, "schedules.x.schedule", "required"),
        (
            {"name": "normalized_decay", "batch_size": 32, "schedule": {"name": "restarts", "period_epochs": 1}},
            "schedules.x.epoch_size",
            "batch_size needs epoch_size",
        ),
        (
            {
                "name": "normalized_decay",
                "batch_size": 0,
                "epoch_size": 8,
                "schedule": {"name": "restarts", "period_epochs": 1},
            },
            "schedules.x.batch_size",
            "> 0",
        ),
    ],
)
def test_config_errors_name_the_path(mapping, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        schedule(mapping)
    assert info.value.path == path
    assert words in str(info.value)


def test_following_a_relative_schedule_without_a_multiplier_is_refused():
    optiplug.register_schedule("scaled_base", relative=True)(_ScaledBase)
    config = {
        "optimizer": {"name": "adamwr", "lr": 0.1, "weight_decay": 0.01},
        "schedules": {"weight_decay": {"name": "normalized_decay", "schedule": {"name": "scaled_base"}}},
    }
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, model(), steps_per_epoch=4, num_epochs=2)
    assert info.value.path == "schedules.weight_decay.schedule"
    assert "relative" in str(info.value)


def test_open_ended_run_needs_a_period_for_a_plain_schedule():
    mapping = {"name": "normalized_decay", "schedule": {"name": "constant", "value": 1.0}}
    with pytest.raises(optiplug.ConfigError) as info:
        evaluate(schedule(mapping), Clock(4, None), optiplug.get_registry(), [0])
    assert "num_epochs" in str(info.value)


import attrs  # noqa: E402 - the user schedule below is only for the refusal test


@attrs.frozen
class _ScaledBase:
    """A relative user schedule without a multiplier: half the group's value."""

    def bind(self, context):
        base = context.base
        return _Half(base)


class _Half:
    relative = True

    def __init__(self, base):
        self.base = base

    def values(self, steps):
        return torch.full_like(steps, self.base / 2)


def test_follows_an_epoch_held_schedule_epoch_by_epoch():
    restarts = {"name": "restarts", "period_epochs": 2, "update_interval": "epoch"}
    mapping = {"name": "normalized_decay", "batch_size": 1, "epoch_size": 4, "schedule": restarts}
    values = evaluate(schedule(mapping), Clock(4, 16.0), optiplug.get_registry(), base=1.0).tolist()
    want = [cos_shape((k // 4 % 2) / 2) * math.sqrt(1 / (4 * 2)) for k in range(16)]
    assert values == pytest.approx(want, rel=1e-12)
