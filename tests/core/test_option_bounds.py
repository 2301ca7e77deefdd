"""Every scheduled or fixed option stays in its range over the whole run, checked at build time (issue 15, item 3).

``lr`` and ``weight_decay`` >= 0, ``momentum`` and Adam's betas in [0, 1), ``eps`` > 0.
MMCV's momentum warmup divides the momentum by ``warmup_ratio`` and may pass 1; MMCV
trains with it, so its dialect builds it with a warning.
"""

from __future__ import annotations

import pytest
import torch

import optiplug
from optiplug import ConfigError, OptiplugWarning
from optiplug.engine.value_table import BOUNDS

RUN = {"num_epochs": 2, "steps_per_epoch": 10}


def linear(option, start, end, optimizer):
    return {"optimizer": optimizer, "schedules": {option: {"name": "linear", "start_value": start, "end_value": end}}}


@pytest.mark.parametrize(
    ("optimizer", "option", "end", "message"),
    [
        ({"name": "sgd", "lr": 0.1, "momentum": 0.9}, "momentum", 1.5, "momentum must be below 1"),
        ({"name": "adam", "lr": 0.1}, "momentum", 1.5, "beta1 must be below 1"),
        ({"name": "adam", "lr": 0.1}, "beta1", -0.5, "beta1 must be >= 0"),
        ({"name": "sgd", "lr": 0.1}, "lr", -0.1, "lr must be >= 0"),
        ({"name": "adamw", "lr": 0.1}, "weight_decay", -0.1, "weight_decay must be >= 0"),
        ({"name": "adam", "lr": 0.1}, "eps", -1e-8, "eps must be > 0"),
    ],
)
def test_a_schedule_leaving_the_range_fails_the_build_naming_the_update(optimizer, option, end, message):
    config = linear(option, 0.5, end, optimizer) | {"run": RUN}
    # the linear schedule at update k is 0.5 + (end - 0.5) * k / 20: find the first update outside the range
    steps = torch.arange(21, dtype=torch.float64)
    values = 0.5 + (end - 0.5) * steps / 20
    bad = BOUNDS[{"momentum": "beta1" if optimizer["name"] == "adam" else "momentum"}.get(option, option)]
    first = int(bad.out_of_range(values).nonzero()[0, 0])
    with pytest.raises(ConfigError, match=rf"^schedules\.{option}: the schedule gives .* at update {first}; {message}"):
        optiplug.build(config, torch.nn.Linear(2, 2))


def test_the_range_ends_where_the_issue_found_it():
    # a schedule ending at 1.5 trained with momentum 1.5 before; now it stops at the first update past 1
    config = linear("momentum", 0.9, 1.5, {"name": "sgd", "lr": 0.1, "momentum": 0.9}) | {"run": RUN}
    with pytest.raises(ConfigError, match=r"gives 1\.02 at update 4; momentum must be below 1"):
        optiplug.build(config, torch.nn.Linear(2, 2))  # 0.9 + 0.6 * 4 / 20 = 1.02, the first >= 1


@pytest.mark.parametrize(
    ("optimizer", "rule", "path", "message"),
    [
        (
            {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            {"momentum": 1.0},
            "rules[0].set.momentum",
            "momentum must be below 1, got 1.0",
        ),
        (
            {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            {"momentum_mult": 2},
            "rules[0].set.momentum_mult",
            "momentum must be below 1, got 1.8",
        ),
        ({"name": "adam", "lr": 0.1}, {"betas": [0.9, 1.0]}, "rules[0].set.betas", "betas must be below 1"),
        ({"name": "adam", "lr": 0.1}, {"eps": 0}, "rules[0].set.eps", "eps must be > 0, got 0"),
        ({"name": "sgd", "lr": 0.1}, {"weight_decay": -1}, "rules[0].set.weight_decay", "weight_decay must be >= 0"),
        ({"name": "sgd", "lr": 0.1, "momentum": 1.5}, {}, "optimizer.momentum", "momentum must be below 1, got 1.5"),
        ({"name": "adam", "lr": 0.1, "eps": 0}, {}, "optimizer.eps", "eps must be > 0, got 0"),
    ],
)
def test_fixed_values_are_kept_in_range(optimizer, rule, path, message):
    config = {"optimizer": optimizer, "rules": [{"kind": "bias", "set": rule}] if rule else []}
    with pytest.raises(ConfigError) as caught:
        optiplug.build(config, torch.nn.Linear(2, 2))
    assert caught.value.path == path and message in str(caught.value)


def test_values_at_the_edges_are_accepted():
    optimizer = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    built = optiplug.build(linear("momentum", 0.0, 0.999, optimizer) | {"run": RUN}, torch.nn.Linear(2, 2))
    built.scheduler.set_step(20)
    assert built.optimizer.param_groups[0]["momentum"] == pytest.approx(0.999)
    optiplug.build(linear("lr", 0.1, 0.0, optimizer) | {"run": RUN}, torch.nn.Linear(2, 2))


def test_an_mmcv_momentum_warmup_past_1_is_built_with_a_warning():
    config = {
        "optimizer": {"type": "SGD", "lr": 0.02, "momentum": 0.95},
        "momentum_config": {
            "policy": "Step",
            "step": 100,
            "by_epoch": False,
            "warmup": "constant",
            "warmup_iters": 5,
            "warmup_ratio": 0.5,
        },
        "runner": {"type": "IterBasedRunner", "max_iters": 20},
    }
    with pytest.warns(
        OptiplugWarning,
        match=r"^momentum_config: the schedule gives 1\.9 at update 0; momentum must be "
        r"below 1 \(mmcv accepts this",
    ):
        built = optiplug.build(config, torch.nn.Linear(2, 2))
    assert built.optimizer.param_groups[0]["momentum"] == pytest.approx(0.95 / 0.5)  # as MMCV trains
    canonical = optiplug.to_recipe(config)
    with pytest.raises(ConfigError, match="momentum must be below 1"):
        optiplug.build(canonical, torch.nn.Linear(2, 2))
