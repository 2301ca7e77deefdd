"""Contract of every registered schedule (and scaling rule).

Each schedule is built from its example in ``EXAMPLES`` (a new schedule must add one:
``test_every_registered_schedule_has_an_example`` fails until it does). Built against a
run, its values are float64, finite and pure: the same steps give the same values, in any
order and any grouping, from one object or two, without touching the steps tensor. Driving
a param group through ``optiplug.build``, the scheduler's ``state_dict`` loaded into a
fresh build continues with the same values. Every scaling rule rescales its schedule's
example to a run that builds.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import torch
from torch import nn

import optiplug
from contract.support import entry_point_names, through_torch_save
from optiplug.plugin import Clock, ScheduleConfig, as_steps, build_schedule, structure_config

STEPS_PER_EPOCH = 5
NUM_EPOCHS = 6
TOTAL = STEPS_PER_EPOCH * NUM_EPOCHS
OPTIMIZER = {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
BASE = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}  # what a relative schedule computes from


@attrs.frozen
class Example:
    """A schedule's options (beside its name) and the group option it is written for."""

    options: dict[str, Any]
    option: str = "lr"


RESTARTS = {"name": "restarts", "period_epochs": 2, "t_mult": 2, "warmup_epochs": 1, "min_value": 1e-6}

EXAMPLES: dict[str, Example] = {
    # optiplug_torch (fvcore's)
    "constant": Example({"value": 0.1}),
    "linear": Example({"start_value": 0.01, "end_value": 0.1}),
    "cosine": Example({"start_value": 0.1, "end_value": 0.0}),
    "exponential": Example({"start_value": 0.1, "decay": 0.1}),
    "polynomial": Example({"base_value": 0.1, "power": 2}),
    "step": Example({"values": [0.1, 0.01, 0.001]}),
    "multistep": Example({"values": [0.1, 0.01, 0.001], "milestones": [2, 4]}),
    "step_with_fixed_gamma": Example({"base_value": 0.1, "num_decays": 2, "gamma": 0.1}),
    "inverse_sqrt": Example({"start_value": 0.1, "warmup_interval_length": 0.1}),
    # driven by reported metrics (docs/plugins/torch.md): with none reported, the group's own value
    "reduce_on_plateau": Example({"patience": 2, "factor": 0.5}),
    # core
    "composite": Example(
        {
            "schedulers": [
                {"name": "linear", "start_value": 0.0, "end_value": 0.1},
                {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
            ],
            "lengths": [0.2, 0.8],
            "interval_scaling": ["rescaled", "fixed"],
        }
    ),
    # optiplug_cyclic (docs/plugins/cyclic.md)
    "cyclic_cosine": Example({"cycle_epochs": 2}),
    "arccosine": Example({"cycle_fraction": 0.5}),
    "triangular": Example({"cycle_epochs": 2, "min_value": 0.001}),
    "triangular2": Example({"cycle_epochs": 2, "min_value": 0.001}),
    "exp_range": Example({"min_value": 0.01, "max_value": 0.1, "cycle_fraction": 0.25, "gamma": 0.999}),
    "mmcv_cyclic": Example({"target_ratio": [10, 1e-4], "cyclic_times": 2}),
    "mmcv_one_cycle": Example({"max_lr": 0.1}),
    "mmcv_momentum_cyclic": Example({}, option="momentum"),
    "mmcv_momentum_one_cycle": Example({}, option="momentum"),
    # optiplug_mmcv (docs/plugins/mmcv.md)
    "mmcv_fixed": Example({"warmup": "linear", "warmup_iters": 3}),
    "mmcv_step": Example({"step": [2, 4]}),
    "mmcv_exp": Example({"gamma": 0.9}),
    "mmcv_poly": Example({"power": 1.0, "min_lr": 0.0, "by_epoch": False}),
    "mmcv_inv": Example({"gamma": 0.1, "power": 0.5}),
    "mmcv_cosine_annealing": Example({"min_lr": 0.0, "by_epoch": False, "warmup": "linear", "warmup_iters": 3}),
    "mmcv_linear_annealing": Example({"min_lr_ratio": 0.01}),
    "mmcv_flat_cosine_annealing": Example({"min_lr_ratio": 0.01, "start_percent": 0.5}),
    "mmcv_step_fix_cosine_annealing": Example(
        {"min_lr": 0.0, "warmup": "exp", "warmup_iters": 1, "warmup_by_epoch": True}
    ),
    "mmcv_momentum_step": Example({"step": [2, 4]}, option="momentum"),
    "mmcv_momentum_cosine_annealing": Example({"min_momentum_ratio": 0.9}, option="momentum"),
    "mmcv_momentum_linear_annealing": Example({"min_momentum": 0.85}, option="momentum"),
    # optiplug_restarts (docs/plugins/restarts.md)
    "restarts": Example({k: v for k, v in RESTARTS.items() if k != "name"}),
    "normalized_decay": Example(
        {"schedule": {"name": "restarts", "period_epochs": 2}, "batch_size": 32, "epoch_size": 1024},
        option="weight_decay",
    ),
    "cosine_warm_restart": Example({"start_value": 0.1, "end_value": 0.0, "restart_interval_length": 0.5}),
    "mmcv_cosine_restart": Example({"periods": [2, 4], "restart_weights": [1.0, 0.5], "min_lr": 0.0}),
    "mmcv_yolox": Example(
        {"num_last_epochs": 1, "min_lr_ratio": 0.05, "warmup": "exp", "warmup_iters": 1, "warmup_by_epoch": True}
    ),
    "mmcv_cosine_annealing_cooldown": Example({"min_lr": 0.0, "cool_down_time": 1}),
    # optiplug_wsd (docs/plugins/wsd.md)
    "wsd": Example({"value": 0.1, "warmup": 0.1, "decay": 0.2, "decay_shape": "1-sqrt"}),
    # optiplug_mmengine (docs/plugins/mmengine.md): a warmup chained with a cosine
    "mmengine": Example(
        {
            "schedulers": [
                {"kind": "Linear", "start_factor": 0.1, "by_epoch": False, "end": 4},
                {"kind": "CosineAnnealing", "eta_min_ratio": 0.01, "by_epoch": True},
            ]
        }
    ),
}

SCHEDULES = entry_point_names("schedules")
SCALING_RULES = entry_point_names("scaling")


def example_of(name: str) -> Example:
    if name not in EXAMPLES:
        pytest.fail(f"schedule {name!r} has no example: add one to EXAMPLES in {__file__}")
    return EXAMPLES[name]


def mapping(name: str) -> dict[str, Any]:
    return {"name": name, **example_of(name).options}


def built_schedule(name: str) -> Any:
    registry = optiplug.get_registry()
    config = structure_config(mapping(name), ScheduleConfig, registry, f"schedules.{name}")
    clock = Clock(STEPS_PER_EPOCH, float(TOTAL))
    return build_schedule(config, clock, registry, base=BASE[example_of(name).option])  # type: ignore[arg-type]


def test_every_registered_schedule_has_an_example():
    missing = sorted(set(SCHEDULES) - set(EXAMPLES))
    assert not missing, f"schedules without an example in EXAMPLES ({__file__}): {missing}"


def test_every_example_is_of_a_registered_schedule():
    stale = sorted(set(EXAMPLES) - set(SCHEDULES))
    assert not stale, f"EXAMPLES holds schedules nobody registers: {stale}"


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_config_class_is_attrs_with_help_on_every_field(name):
    spec = optiplug.get_registry().schedules.get(name)
    assert attrs.has(spec.config_class), f"{spec.config_class!r} is not an attrs class"
    silent = [f.name for f in attrs.fields(spec.config_class) if not f.metadata.get("help")]
    assert not silent, f"fields without help text (optiplug schema and the docs show it): {silent}"


@pytest.mark.parametrize("name", SCHEDULES)
def test_values_over_a_run_are_finite_float64_and_pure(name):
    schedule = built_schedule(name)
    steps = as_steps(range(TOTAL))
    kept = steps.clone()
    values = schedule.values(steps)
    assert torch.equal(steps, kept), "values() changed the steps it was given"
    assert isinstance(values, torch.Tensor) and values.dtype == torch.float64 and values.shape == steps.shape
    assert torch.isfinite(values).all(), values.tolist()

    assert torch.equal(schedule.values(steps), values), "a second evaluation differs"
    assert torch.equal(built_schedule(name).values(steps), values), "a second build differs"
    order = torch.randperm(TOTAL, generator=torch.Generator().manual_seed(0))
    assert torch.equal(schedule.values(steps[order]), values[order]), "values depend on the order of the steps"
    one_by_one = torch.cat([schedule.values(steps[k : k + 1]) for k in range(TOTAL)])
    assert torch.equal(one_by_one, values), "values depend on which steps are evaluated together"
    as_grid = schedule.values(steps.reshape(STEPS_PER_EPOCH, NUM_EPOCHS))
    assert torch.equal(as_grid.reshape(-1), values), "values depend on the shape of the steps"
    between = schedule.values(steps + 0.5)  # composites evaluate their parts at fractional steps
    assert between.dtype == torch.float64 and torch.isfinite(between).all(), between.tolist()


def test_a_schedule_that_moves_is_seen_to_move():
    """The purity checks compare values: they are meaningful only if the examples are not all constant."""
    moving = [
        n
        for n in EXAMPLES
        if n in SCHEDULES and len(set(built_schedule(n).values(as_steps(range(TOTAL))).tolist())) > 1
    ]
    assert len(moving) >= len(EXAMPLES) - 2


def build(name: str, seed: int = 0) -> optiplug.Built:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    recipe = {
        "optimizer": OPTIMIZER,
        "rules": [{"kind": "bias", "set": {"lr_mult": 0.5, "decay_mult": 0.5}}],
        "schedules": {example_of(name).option: mapping(name)},
    }
    return optiplug.build(recipe, model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS)


def scheduled(built: optiplug.Built, option: str) -> list[float]:
    if option == "momentum" and "momentum" not in built.optimizer.param_groups[0]:
        option = "betas"
    return [group[option] for group in built.optimizer.param_groups]


def advance(built: optiplug.Built, updates: int, option: str) -> list[list[float]]:
    """The option of every group before each of ``updates`` updates (no gradients: only the schedule moves)."""
    seen = []
    for _ in range(updates):
        seen.append(scheduled(built, option))
        built.optimizer.step()
        built.scheduler.step()
    return seen


@pytest.mark.parametrize("name", SCHEDULES)
def test_scheduler_state_dict_round_trips_into_a_fresh_build(name):
    option = example_of(name).option
    built = build(name)
    assert len(built.optimizer.param_groups) == 2
    advance(built, 7, option)
    state = through_torch_save(built.scheduler.state_dict())

    fresh = build(name, seed=1)
    fresh.scheduler.load_state_dict(state)
    assert fresh.scheduler.last_epoch == built.scheduler.last_epoch == 7
    rest = TOTAL - 7 + 2  # two updates past the end: the last value holds
    expected = advance(built, rest, option)
    assert advance(fresh, rest, option) == expected
    assert all(math.isfinite(v) for row in expected for v in row)
    assert expected[-1] == expected[-2], "past the end of the run (update TOTAL on) the value holds"


@pytest.mark.parametrize("name", SCALING_RULES)
def test_a_scaling_rule_rescales_its_schedules_example_to_a_run_that_builds(name):
    assert name in SCHEDULES, f"scaling rule {name!r} names no registered schedule"
    example = example_of(name)
    assert example.option == "lr", "scaling rules move lr schedules"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    recipe = {
        "optimizer": OPTIMIZER,
        "schedules": {"lr": mapping(name)},
        "lr_scaling": {"base_batch_size": 4, "base_value": 0.1},
    }
    unscaled = optiplug.build(
        {**recipe, "lr_scaling": None}, model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS
    )
    built = optiplug.build(
        recipe, model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS, batch_size_per_device=8, world_size=2
    )
    values = [row[0] for row in advance(built, TOTAL, "lr")]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    before = [row[0] for row in advance(unscaled, TOTAL, "lr")]
    assert max(values) > max(before), f"batch 16 at base batch 4 should raise the peak lr: {values}"
