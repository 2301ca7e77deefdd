"""``wsd`` against Hägele et al.'s (2024) formulas written out here, and its cooldown branches."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optiplug
import optiplug_wsd
from optiplug.tooling.curves import compute_curves


def paper(n: int, total: int, value: float, warmup: int, cooldown: int, shape: str) -> float:
    """The lr before update n (0-based) with a warmup of ``warmup`` updates and the last ``cooldown`` cooling down."""
    start = total - cooldown
    if n < warmup:
        return value * n / warmup
    if n < start:
        return value
    s = (n - start) / cooldown
    return value * {"linear": 1 - s, "cosine": (1 + math.cos(math.pi * s)) / 2, "1-sqrt": 1 - math.sqrt(s)}[shape]


def lrs(schedule, steps_per_epoch=10, num_epochs=5, model=None):
    recipe = {"optimizer": {"name": "SGD", "lr": 0.1}, "schedules": {"lr": schedule}}
    built = optiplug.build(recipe, model or nn.Linear(2, 1), steps_per_epoch=steps_per_epoch, num_epochs=num_epochs)
    return compute_curves(built).values["lr"][0].tolist()


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(
    ("total", "warmup", "decay", "w_updates", "d_updates"),
    [(50, 0.1, 0.2, 5, 10), (30, 0.0, 0.5, 0, 15), (40, 0.25, 0.75, 10, 30)],
)
def test_values_are_the_papers_formula(shape, total, warmup, decay, w_updates, d_updates):
    schedule = {"name": "wsd", "value": 1e-3, "warmup": warmup, "decay": decay, "decay_shape": shape}
    ours = lrs(schedule, steps_per_epoch=total // 5, num_epochs=5)
    expected = [paper(n, total, 1e-3, w_updates, d_updates, shape) for n in range(total)]
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-18)


def test_the_issue_recipe_builds_and_its_cooldown_starts_at_its_update():
    recipe = {
        "optimizer": {"name": "AdamW", "lr": 1e-3},
        "schedules": {"lr": {"name": "wsd", "value": 1.0e-3, "warmup": 0.1, "decay": 0.2, "decay_shape": "1-sqrt"}},
        "run": {"num_epochs": 10, "steps_per_epoch": 100},
    }
    values = compute_curves(optiplug.build(recipe, nn.Linear(2, 1))).values["lr"][0]
    assert values[0] == 0.0 and values[50] == 5e-4 and values[100] == 1e-3
    assert values[799] == 1e-3 and values[800] == 1e-3  # f(0) = 1: the cooldown starts at its peak
    assert values[801] == pytest.approx(1e-3 * (1 - math.sqrt(1 / 200)), rel=1e-14)
    assert values[999] == pytest.approx(1e-3 * (1 - math.sqrt(199 / 200)), rel=1e-14)


def test_defaults_are_no_warmup_and_a_1_sqrt_cooldown_over_the_last_fifth():
    ours = lrs({"name": "wsd", "value": 0.5})
    assert ours == pytest.approx([paper(n, 50, 0.5, 0, 10, "1-sqrt") for n in range(50)], rel=1e-12)


def test_lr_scaling_moves_the_value_only():
    schedule = {"name": "wsd", "value": 0.1, "warmup": 0.1, "decay": 0.2, "decay_shape": "linear"}
    recipe = {
        "optimizer": {"name": "SGD", "lr": 0.1},
        "schedules": {"lr": schedule},
        "lr_scaling": {"base_batch_size": 32},
        "run": {"num_epochs": 5, "steps_per_epoch": 10, "batch_size_per_device": 64},
    }
    scaled = compute_curves(optiplug.build(recipe, nn.Linear(2, 1))).values["lr"][0].tolist()
    assert scaled == pytest.approx([paper(n, 50, 0.2, 5, 10, "linear") for n in range(50)], rel=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"decay_shape": "sqrt"},
            r"^schedules\.lr\.decay_shape: must be one of 'linear', 'cosine', '1-sqrt', got 'sqrt' "
            r"\(did you mean '1-sqrt'\?\)$",
        ),
        ({"warmup": 0.7, "decay": 0.4}, r"^schedules\.lr\.decay: warmup \+ decay must be <= 1, got 0\.7 \+ 0\.4$"),
        (
            {"decay": 0.2, "decay_start": 30},
            r"^schedules\.lr\.decay_start: give decay \(a fraction of the run\) or decay_start",
        ),
        (
            {"decay_start": 50},
            r"^schedules\.lr\.decay_start: decay_start must be an update of the run \(< 50 updates\), got 50$",
        ),
        (
            {"warmup": 0.2, "decay_start": 5},
            r"^schedules\.lr\.decay_start: decay_start 5 is inside the warmup, which ends at update 10$",
        ),
        ({"value": 0}, r"^schedules\.lr\.value: must be > 0, got 0"),
        ({"warmup": 1.5}, r"^schedules\.lr\.warmup: must be in \[0\.0, 1\.0\], got 1\.5$"),
        ({"peak_value": 0.1}, r"^schedules\.lr\.peak_value: unknown key"),
    ],
)
def test_errors_name_the_path(change, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        lrs({"name": "wsd", "value": 0.1} | change)


# --- cooldown branches --------------------------------------------------------------------------------

RUN = {
    "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
    "schedules": {"lr": {"name": "wsd", "value": 0.1, "warmup": 0.1, "decay": 0.2, "decay_shape": "1-sqrt"}},
    "run": {"num_epochs": 10, "steps_per_epoch": 10},
}


def test_cooldown_recipe_cools_down_from_the_branch_point():
    branch = optiplug_wsd.cooldown_recipe(RUN, 40)
    assert branch.run.total_steps == 50  # 10 updates: the original decay fraction 0.2 of the branched run
    values = compute_curves(optiplug.build(branch, nn.Linear(2, 1))).values["lr"][0].tolist()
    original = compute_curves(optiplug.build(RUN, nn.Linear(2, 1))).values["lr"][0].tolist()
    assert values[:40] == original[:40]  # bit for bit: the warmup ends at the same update, then the value
    assert values[40:] == pytest.approx([paper(n, 50, 0.1, 10, 10, "1-sqrt") for n in range(40, 50)], rel=1e-12)


def test_cooldown_recipe_with_a_length_and_a_shape_written_as_data_builds_again():
    branch = optiplug_wsd.cooldown_recipe(RUN, 60, length=7)
    data = optiplug.plugin.unstructure_config(branch, optiplug.get_registry())
    assert data["schedules"]["lr"]["decay_start"] == 60 and data["run"]["total_steps"] == 67
    values = compute_curves(optiplug.build(data, nn.Linear(2, 1))).values["lr"][0].tolist()
    assert values == pytest.approx([paper(n, 67, 0.1, 10, 7, "1-sqrt") for n in range(67)], rel=1e-12)


def train(built, model, steps):
    for step in steps:
        torch.manual_seed(step)
        assert built.step(model(torch.randn(4, 3)).pow(2).mean())


def test_a_branch_resumed_from_the_checkpoint_equals_the_branch_trained_from_scratch():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    original = optiplug.build(RUN, model)
    train(original, model, range(30))
    checkpoint = {"model": {k: v.clone() for k, v in model.state_dict().items()}, "built": original.state_dict()}

    branch_recipe = optiplug_wsd.cooldown_recipe(RUN, 30)
    resumed_model = nn.Linear(3, 2)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = optiplug.build(branch_recipe, resumed_model)
    optiplug_wsd.start_branch(resumed, checkpoint["built"])
    train(resumed, resumed_model, range(30, branch_recipe.run.total_steps))

    scratch_model = nn.Linear(3, 2)
    scratch_model.load_state_dict(start)
    scratch = optiplug.build(branch_recipe, scratch_model)
    train(scratch, scratch_model, range(branch_recipe.run.total_steps))
    for a, b in zip(resumed_model.parameters(), scratch_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.scheduler.last_epoch == scratch.scheduler.last_epoch == branch_recipe.run.total_steps


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: optiplug_wsd.cooldown_recipe(RUN, 5),
            r"^cooldown_recipe\(at=\.\.\.\): must be an update of the stable phase, from the end of the warmup "
            r"\(10\) to the start of the cooldown \(80\); got 5$",
        ),
        (lambda: optiplug_wsd.cooldown_recipe(RUN, 81), r"got 81$"),
        (
            lambda: optiplug_wsd.cooldown_recipe(RUN, 40, length=0),
            r"^cooldown_recipe\(length=\.\.\.\): must be a whole number of updates >= 1, got 0$",
        ),
        (
            lambda: optiplug_wsd.cooldown_recipe(RUN, 40, option="momentum"),
            r"^schedules\.momentum: the recipe has no schedule for 'momentum'",
        ),
        (
            lambda: optiplug_wsd.cooldown_recipe(
                RUN | {"schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0}}}, 40
            ),
            r"^schedules\.lr\.name: a cooldown branches a wsd schedule, this one is 'cosine'$",
        ),
        (
            lambda: optiplug_wsd.cooldown_recipe(optiplug_wsd.cooldown_recipe(RUN, 40), 45),
            r"^schedules\.lr\.decay_start: this is already a cooldown run",
        ),
        (
            lambda: optiplug_wsd.cooldown_recipe({"schedules": RUN["schedules"]}, 40),
            r"^run: the cooldown needs the run's length",
        ),
    ],
)
def test_cooldown_recipe_errors(call, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        call()


def test_start_branch_refuses_a_checkpoint_of_another_update():
    model = nn.Linear(3, 2)
    original = optiplug.build(RUN, model)
    train(original, model, range(20))
    branch = optiplug.build(optiplug_wsd.cooldown_recipe(RUN, 30), nn.Linear(3, 2))
    with pytest.raises(
        optiplug.StateError, match=r"^this cooldown branches at update 30, the checkpoint was written at update 20$"
    ):
        optiplug_wsd.start_branch(branch, original.state_dict())
    with pytest.raises(optiplug.StateError, match=r"^not a cooldown run"):
        optiplug_wsd.start_branch(original, original.state_dict())


# --- the command and the plugin list -------------------------------------------------------------------


def test_the_command_writes_a_branch_that_builds(tmp_path):
    import yaml

    from optiplug_wsd.__main__ import main

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(RUN))
    output = tmp_path / "branch.yaml"
    assert main(["cooldown", str(config), "--at", "40", "--length", "5", "-o", str(output)]) == 0
    branch = yaml.safe_load(output.read_text())
    assert branch["schedules"]["lr"]["decay_start"] == 40 and branch["run"]["total_steps"] == 45
    values = compute_curves(optiplug.build(branch, nn.Linear(2, 1))).values["lr"][0].tolist()
    assert values == pytest.approx([paper(n, 45, 0.1, 10, 5, "1-sqrt") for n in range(45)], rel=1e-12)


def test_the_command_names_its_flags_in_errors(tmp_path, capsys):
    import yaml

    from optiplug_wsd.__main__ import main

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(RUN))
    assert main(["cooldown", str(config), "--at", "95"]) == 2
    assert capsys.readouterr().err.startswith(
        "python -m optiplug_wsd: error: --at: must be an update of the stable phase, from the end of the warmup (10)"
    )
    assert main(["cooldown", str(config), "--at", "40", "--length", "0"]) == 2
    assert "error: --length: must be a whole number of updates >= 1, got 0" in capsys.readouterr().err


def test_optiplug_plugins_lists_the_schedule_under_the_wsd_plugin(capsys):
    import json

    from optiplug.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["wsd"]["provides"] == {"schedules": ["wsd"], "scaling_rules": ["wsd"]}
    assert rows["wsd"]["status"] == "loaded"
