"""Resuming under a new horizon: each policy's values against the formulas, written out here.

The reference is independent of optiplug's schedules: fvcore's cosine
``end + (start - end) * (1 + cos(pi n / T)) / 2`` and wsd's 1-sqrt cooldown
``value * (1 - sqrt((n - k) / (T' - k)))`` computed with ``math``, and
``optiplug_wsd.cooldown_recipe`` for the branch. A run is traced as its lr before each
update: the saved run's updates ``< k``, then the resumed run's to its end.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings

import pytest
import torch
from torch import nn

import optiplug
import optiplug_wsd
from optiplug.engine.structuring import unstructure_recipe

START = 0.1
PER_EPOCH = 10


def cosine(epochs: int, start: float = START, **run: object) -> dict:
    return {
        "optimizer": {"name": "SGD", "lr": start, "momentum": 0.9},
        "schedules": {"lr": {"name": "cosine", "start_value": start, "end_value": 0.0}},
        "run": {"num_epochs": epochs, "steps_per_epoch": PER_EPOCH, **run},
    }


def wsd(total: int) -> dict:
    return {
        "optimizer": {"name": "SGD", "lr": START},
        "schedules": {"lr": {"name": "wsd", "value": START, "warmup": 0.1, "decay": 0.2}},
        "run": {"total_steps": total},
    }


def cosine_at(n: float, total: float, start: float = START) -> float:
    return start * (1 + math.cos(math.pi * n / total)) / 2


def model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def trace(built: optiplug.Built, updates: int) -> list[float]:
    """The lr before each of the next ``updates`` updates (the optimizer steps with no gradients)."""
    values = []
    for _ in range(updates):
        values.append(built.optimizer.param_groups[0]["lr"])
        built.optimizer.step()
        built.scheduler.step()
    return values


def saved_at(config: dict, k: int) -> tuple[list[float], dict]:
    """The saved run's lrs before updates ``< k`` and its checkpoint before update ``k``, through torch.save."""
    built = optiplug.build(config, model())
    before = trace(built, k)
    buffer = io.BytesIO()
    torch.save(built.state_dict(), buffer)
    buffer.seek(0)
    return before, torch.load(buffer, weights_only=True)


def resumed(config: dict, state: dict, policy: str | None) -> optiplug.Built:
    built = optiplug.build(config, model())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optiplug.OptiplugWarning)
        built.load_state_dict(state, resume=policy)
    return built


def test_rescale_lands_at_k_times_new_over_old_horizon():
    before, state = saved_at(cosine(10), 40)
    built = resumed(cosine(15), state, "rescale")
    assert built.scheduler.last_epoch == 40 * 150 // 100
    after = trace(built, 150 - 60)
    assert before == pytest.approx([cosine_at(n, 100) for n in range(40)], rel=1e-12)
    assert after == pytest.approx([cosine_at(n, 150) for n in range(60, 150)], rel=1e-12)
    assert after[0] == pytest.approx(cosine_at(40, 100), rel=1e-12)  # the same fraction of the schedule done


@pytest.mark.parametrize(("k", "epochs", "expected"), [(41, 15, 62), (33, 5, 17), (99, 12, 119), (1, 20, 2)])
def test_rescale_rounds_to_the_nearest_update(k, epochs, expected):
    _, state = saved_at(cosine(10), k)
    built = resumed(cosine(epochs), state, "rescale")
    assert built.scheduler.last_epoch == expected == math.floor(k * epochs / 10 + 0.5)
    assert trace(built, 1) == pytest.approx([cosine_at(expected, epochs * PER_EPOCH)], rel=1e-12)


def test_rescale_moves_the_batch_count_with_the_updates_under_accumulation():
    accumulated = {"accumulation": {"steps": 2}}
    built = optiplug.build(cosine(10) | accumulated, model())  # len(loader) 10: 5 updates per epoch, 50 in all
    x = torch.ones(1, 3)
    while built.scheduler.last_epoch < 20:
        built.step(built.optimizer.param_groups[0]["params"][0].sum() * x.sum())
    state = built.state_dict()
    longer = optiplug.build(cosine(15) | accumulated, model())
    longer.load_state_dict(state, resume="rescale")
    assert longer.scheduler.last_epoch == 30
    assert longer.micro_steps == state["micro_steps"] + 10 * 2
    calls = 0
    while longer.micro_steps < longer.total_micro_steps:
        longer.step(longer.optimizer.param_groups[0]["params"][0].sum() * x.sum())
        calls += 1
    assert calls == 2 * (75 - 30) and longer.scheduler.last_epoch == 75


def test_extend_keeps_the_values_before_k_and_follows_the_new_recipe_from_k():
    before, state = saved_at(cosine(10), 40)
    built = optiplug.build(cosine(15), model())
    with pytest.warns(optiplug.OptiplugWarning, match=r"resume='extend': the schedule jumps at update 40") as seen:
        built.load_state_dict(state, resume="extend")
    assert f"{cosine_at(40, 100):.6g} -> {cosine_at(40, 150):.6g}" in str(seen[0].message)
    assert seen[0].filename == __file__, "the warning names the user's line, not optiplug's"
    assert built.scheduler.last_epoch == 40
    run = before + trace(built, 110)
    assert run[:40] == pytest.approx([cosine_at(n, 100) for n in range(40)], rel=1e-12)
    assert run[40:] == pytest.approx([cosine_at(n, 150) for n in range(40, 150)], rel=1e-12)


def test_the_jump_warning_names_the_users_line_through_the_scheduler_too():
    _, state = saved_at(cosine(10), 40)
    built = optiplug.build(cosine(15), model())
    with pytest.warns(optiplug.OptiplugWarning, match="jumps at update 40") as seen:
        built.scheduler.load_state_dict(state["scheduler"], resume="extend")
    assert seen[0].filename == __file__


def test_extend_with_a_new_shape_takes_the_new_value_at_k():
    _, state = saved_at(cosine(10), 40)
    constant = cosine(15) | {"schedules": {"lr": {"name": "constant", "value": 0.02}}}
    built = resumed(constant, state, "extend")
    assert trace(built, 3) == [0.02, 0.02, 0.02]


def test_extend_without_a_jump_gives_no_warning():
    _, state = saved_at(wsd(100), 40)  # stable phase: the value is START on both horizons
    built = optiplug.build(wsd(200), model())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built.load_state_dict(state, resume="extend")
    assert trace(built, 1) == [START]


def test_branch_equals_cooldown_recipe_started_at_k():
    before, state = saved_at(wsd(100), 40)
    built = optiplug.build(wsd(70), model())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cooldown starts from the stable value: no jump
        built.load_state_dict(state, resume="branch")
    after = trace(built, 30)
    branch = optiplug.build(optiplug_wsd.cooldown_recipe(wsd(100), 40, length=30), model())
    branch.scheduler.set_step(40)
    assert after == trace(branch, 30)
    assert after == pytest.approx([START * (1 - math.sqrt((n - 40) / 30)) for n in range(40, 70)], rel=1e-12)
    assert before == pytest.approx([START * min(1.0, n / 10) for n in range(40)], rel=1e-12)


def test_branch_on_the_same_horizon_cools_down_to_its_end():
    _, state = saved_at(wsd(100), 50)
    built = resumed(wsd(100), state, "branch")
    assert trace(built, 50) == pytest.approx([START * (1 - math.sqrt((n - 50) / 50)) for n in range(50, 100)])


def test_a_branched_run_resumes_its_cooldown_from_its_own_checkpoint():
    _, state = saved_at(wsd(100), 40)
    first = resumed(wsd(70), state, "branch")
    trace(first, 10)
    checkpoint = first.state_dict()
    assert checkpoint["scheduler"]["branch_at"] == 40
    again = optiplug.build(wsd(70), model())
    again.load_state_dict(checkpoint)  # strict: same recipe and run, and the branch point comes with the state
    assert trace(again, 20) == pytest.approx([START * (1 - math.sqrt((n - 40) / 30)) for n in range(50, 70)])


def test_the_policy_can_come_from_the_recipe():
    _, state = saved_at(cosine(10), 40)
    built = optiplug.build(cosine(15, resume="rescale"), model())
    built.load_state_dict(state)
    assert built.scheduler.last_epoch == 60
    assert (
        built.scheduler.state_dict()["fingerprint"] == optiplug.build(cosine(15), model()).scheduler.recipe_fingerprint
    )


def test_the_scheduler_alone_resumes_under_a_policy():
    _, state = saved_at(cosine(10), 40)
    built = optiplug.build(cosine(20), model())
    built.scheduler.load_state_dict(state["scheduler"], resume="rescale")
    assert built.scheduler.last_epoch == 80
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(cosine_at(80, 200), rel=1e-12)


def test_an_unchanged_run_loads_under_every_policy_at_the_saved_update():
    _, state = saved_at(cosine(10), 40)
    for policy in ("strict", "rescale", "extend"):
        built = resumed(cosine(10), state, policy)
        assert built.scheduler.last_epoch == 40
        assert trace(built, 60) == pytest.approx([cosine_at(n, 100) for n in range(40, 100)], rel=1e-12)


def test_an_old_state_holding_only_the_fingerprint_still_loads_under_strict():
    _, state = saved_at(cosine(10), 40)
    old = {key: state["scheduler"][key] for key in ("step", "fingerprint", "steps_per_epoch", "total_steps")}
    built = optiplug.build(cosine(10), model())
    data = unstructure_recipe(built.recipe, optiplug.get_registry())
    # The fingerprint is computed as before the recipe was recorded: a sha256 of the resolved recipe's JSON.
    assert (
        old["fingerprint"] == hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    )
    built.load_state_dict(state | {"scheduler": old})
    assert built.scheduler.last_epoch == 40
    longer = resumed(cosine(15), state | {"scheduler": old}, "rescale")
    assert longer.scheduler.last_epoch == 60
