"""Resuming under a new horizon: what is refused, and how the messages name it."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import optiplug

START = 0.1


def cosine(epochs: int = 10, start: float = START, per_epoch: int = 10, **changes: object) -> dict:
    return {
        "optimizer": {"name": "SGD", "lr": START, "momentum": 0.9},
        "schedules": {"lr": {"name": "cosine", "start_value": start, "end_value": 0.0}},
        "run": {"num_epochs": epochs, "steps_per_epoch": per_epoch},
    } | changes


def wsd(total: int) -> dict:
    return {
        "optimizer": {"name": "SGD", "lr": START},
        "schedules": {"lr": {"name": "wsd", "value": START, "warmup": 0.1}},
        "run": {"total_steps": total},
    }


def model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def state_at(config: dict, k: int = 40, **figures: int) -> dict:
    built = optiplug.build(config, model(), **figures)
    built.scheduler.set_step(k)
    return built.state_dict()


def test_strict_names_each_change_of_the_recipe_and_of_the_run():
    state = state_at(cosine())
    built = optiplug.build(cosine(12, start=0.2), model())
    with pytest.raises(optiplug.StateError) as refused:
        built.load_state_dict(state)
    message = str(refused.value)
    assert message.startswith("the state was saved from a different recipe: ")
    assert "run.num_epochs: 10 -> 12" in message and "schedules.lr.start_value: 0.1 -> 0.2" in message
    assert "resume='rescale' or 'extend'" in message
    assert built.scheduler.last_epoch == 0


def test_strict_names_the_run_figures_given_to_build_in_the_loaders_terms():
    unsized = {k: v for k, v in cosine().items() if k != "run"}
    state = state_at(unsized, steps_per_epoch=10, num_epochs=10)
    built = optiplug.build(unsized, model(), steps_per_epoch=10, num_epochs=15)
    with pytest.raises(optiplug.StateError, match=r"saved from a run of another length: run.num_epochs: 10 -> 15;"):
        built.load_state_dict(state)
    accumulated = unsized | {"accumulation": {"steps": 2}}
    state = state_at(accumulated, steps_per_epoch=6, num_epochs=10)  # 3 updates per epoch
    built = optiplug.build(accumulated, model(), steps_per_epoch=8, num_epochs=10)
    with pytest.raises(optiplug.StateError, match=r"run.steps_per_epoch: 6 -> 8;"):  # batches, len(loader)
        built.load_state_dict(state)


def test_an_old_state_is_told_in_updates_per_epoch_and_by_its_fingerprint():
    state = state_at(cosine(per_epoch=6, accumulation={"steps": 2}))
    old = {key: state["scheduler"][key] for key in ("step", "fingerprint", "steps_per_epoch", "total_steps")}
    built = optiplug.build(cosine(per_epoch=8, accumulation={"steps": 2}), model())
    with pytest.raises(optiplug.StateError) as refused:
        built.load_state_dict(state | {"scheduler": old})
    message = str(refused.value)
    assert "updates per epoch: 3 -> 4 (len(loader) / accumulation.steps)" in message
    assert "updates in the run: 30 -> 40" in message
    assert re.search(r"recipe: fingerprint \w+ -> \w+ \(the state was saved by an older optiplug", message)
    assert "steps_per_epoch=3" not in message


def test_an_unknown_policy_is_refused_with_the_closest_name():
    state = state_at(cosine())
    built = optiplug.build(cosine(), model())
    with pytest.raises(optiplug.ConfigError, match=r"^load_state_dict\(resume=...\): must be one of 'strict', "):
        built.load_state_dict(state, resume="rescal")
    with pytest.raises(optiplug.ConfigError, match=r"did you mean 'extend'\?"):
        built.load_state_dict(state, resume="extnd")
    with pytest.raises(optiplug.ConfigError, match=r"^run.resume: must be one of .*got 'stretch'"):
        optiplug.build(cosine(run={"num_epochs": 10, "steps_per_epoch": 10, "resume": "stretch"}), model())


def test_branch_is_refused_for_a_schedule_that_does_not_offer_it():
    state = state_at(cosine())
    built = optiplug.build(cosine(12), model())
    with pytest.raises(optiplug.ConfigError) as refused:
        built.load_state_dict(state, resume="branch")
    assert str(refused.value) == (
        "load_state_dict(resume=...): 'branch' starts a cooldown at the saved update, which none of this "
        "recipe's schedules (cosine) offers; schedules that do: wsd"
    )
    assert built.scheduler.last_epoch == 0
    recipe = cosine(12, run={"num_epochs": 12, "steps_per_epoch": 10, "resume": "branch"})
    with pytest.raises(optiplug.ConfigError, match=r"^run.resume: 'branch' starts a cooldown .* \(cosine\) offers"):
        optiplug.build(recipe, model())  # refused at the build, before any state


def test_branching_twice_or_outside_the_run_is_refused():
    built = optiplug.build(wsd(70), model())
    built.load_state_dict(state_at(wsd(100)), resume="branch")
    again = optiplug.build(wsd(70), model())
    with pytest.raises(optiplug.StateError, match="started its cooldown at update 40 already"):
        again.load_state_dict(built.state_dict(), resume="branch")
    short = optiplug.build(wsd(30), model())
    with pytest.raises(
        optiplug.ConfigError, match=r"^schedules.lr: the cooldown cannot start at update 40: the run has 30 updates$"
    ):
        short.load_state_dict(state_at(wsd(100)), resume="branch")


def test_a_policy_refuses_changes_that_are_not_schedules_or_the_run():
    state = state_at(cosine())
    other = cosine(12, optimizer={"name": "SGD", "lr": START, "momentum": 0.8})
    with pytest.raises(optiplug.StateError) as refused:
        optiplug.build(other, model()).load_state_dict(state, resume="extend")
    assert str(refused.value).startswith(
        "resume='extend' continues the schedules under a new recipe or run length, but optimizer.momentum: "
        "0.9 -> 0.8 is neither"
    )


def test_rescale_needs_both_lengths():
    constant = {"optimizer": {"name": "SGD", "lr": START}, "schedules": {"lr": {"name": "constant", "value": START}}}
    open_ended = optiplug.build(constant | {"run": {"steps_per_epoch": 10}}, model())
    open_ended.scheduler.set_step(5)
    built = optiplug.build(constant | {"run": {"steps_per_epoch": 10, "num_epochs": 3}}, model())
    with pytest.raises(optiplug.StateError, match="and the saved run is open-ended; give both runs a length"):
        built.load_state_dict(open_ended.state_dict(), resume="rescale")
    built.load_state_dict(open_ended.state_dict(), resume="extend")
    assert built.scheduler.last_epoch == 5


def test_a_branch_refused_by_the_optimizer_leaves_the_run_unbranched():
    state = state_at(wsd(100))
    wider = optiplug.build(wsd(70), nn.Linear(3, 1, bias=False))  # one parameter, the state has two
    with pytest.raises(optiplug.StateError, match="does not fit this model's parameters"):
        wider.load_state_dict(state, resume="branch")
    assert wider.scheduler.branch_at is None and wider.scheduler.state_dict()["branch_at"] is None
    wider.scheduler.set_step(50)  # the run's own wsd: stable until its cooldown at 56
    assert wider.optimizer.param_groups[0]["lr"] == START
