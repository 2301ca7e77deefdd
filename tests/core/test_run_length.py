"""One definition of the run's length in every dialect (issue 15, item 2).

``steps_per_epoch`` is what the data loader yields per epoch (``len(loader)``, the calls
of ``built.step``); ``accumulation.steps`` of them make one optimizer update, so the
schedules, which count updates, span ``steps_per_epoch * num_epochs / accumulation.steps``
updates. When the figures cannot all be right, a warning says so.
"""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug import OptiplugWarning

LINEAR = {
    "optimizer": {"name": "sgd", "lr": 0.1},
    "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
}


def train(built, model, batches):
    lrs = []
    for _ in range(batches):
        if built.step(model(torch.ones(1, 2)).sum()):
            lrs.append(built.optimizer.param_groups[0]["lr"])
    return lrs


def test_len_loader_with_accumulation_runs_the_schedule_to_its_end():
    # the finding: accumulation {steps: 4} with len(loader) ended a linear 0.1 -> 0 schedule at 0.075
    model = torch.nn.Linear(2, 1)
    built = optiplug.build(LINEAR | {"accumulation": {"steps": 4}}, model, steps_per_epoch=20, num_epochs=2)
    assert (built.clock.steps_per_epoch, built.clock.total_steps) == (5, 10.0)
    lrs = train(built, model, 20 * 2)
    # fvcore's linear after update k of 10: 0.1 * (1 - k / 10)
    assert lrs == pytest.approx([0.1 * (1 - k / 10) for k in range(1, 11)], abs=1e-15)
    assert lrs[-1] == 0.0 and built.scheduler.last_epoch == 10


def test_the_same_figures_mean_the_same_run_in_the_recipe_and_in_build():
    model = torch.nn.Linear(2, 1)
    given = optiplug.build(LINEAR | {"accumulation": {"steps": 4}}, model, steps_per_epoch=20, num_epochs=2)
    written = optiplug.build(
        LINEAR | {"accumulation": {"steps": 4}, "run": {"steps_per_epoch": 20, "num_epochs": 2}}, model
    )
    total = optiplug.build(LINEAR | {"accumulation": {"steps": 4}, "run": {"total_steps": 40}}, model)
    assert given.clock == written.clock and given.total_micro_steps == written.total_micro_steps == 40
    assert total.clock.total_steps == 10.0 and total.total_micro_steps == 40


def test_mmcv_counts_the_same_batches_as_iterations():
    config = {
        "optimizer": {"type": "SGD", "lr": 0.1},
        "optimizer_config": {"type": "GradientCumulativeOptimizerHook", "cumulative_iters": 4},
        "lr_config": {"policy": "Fixed"},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 2},
    }
    built = optiplug.build(config, torch.nn.Linear(2, 1), steps_per_epoch=20)
    assert built.per_iteration and built.clock.total_steps == 40.0 and built.total_micro_steps == 40
    assert built.batches_per_epoch == 20


def test_an_epoch_that_is_not_whole_updates_warns_and_the_schedule_still_ends():
    model = torch.nn.Linear(2, 1)
    with pytest.warns(
        OptiplugWarning,
        match=r"^steps_per_epoch \(10 batches, len\(loader\)\) is not a multiple of "
        r"accumulation\.steps \(4\): an epoch is 2\.5 updates",
    ) as caught:
        built = optiplug.build(LINEAR | {"accumulation": {"steps": 4}}, model, steps_per_epoch=10, num_epochs=3)
    message = str(caught[0].message)
    assert "the run's 30 batches make 8 updates" in message and "at each epoch's end: 9 updates" in message
    assert built.clock.total_steps == math.ceil(30 / 4)
    lrs = train(built, model, 30)
    assert len(lrs) == 8 and lrs[-1] == 0.0  # the last update (2 batches) ends the schedule


def test_total_steps_disagreeing_with_the_epochs_warns():
    model = torch.nn.Linear(2, 1)
    config = LINEAR | {"run": {"total_steps": 50, "steps_per_epoch": 20, "num_epochs": 2}}
    with pytest.warns(
        OptiplugWarning,
        match=r"run\.total_steps \(50\) and steps_per_epoch x num_epochs "
        r"\(20 x 2 = 40\) cannot both be right; the run lasts run\.total_steps",
    ):
        built = optiplug.build(config, model)
    assert built.clock.total_steps == 50.0
