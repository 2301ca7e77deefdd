"""``--compile`` / ``--no-compile`` on the command line: the run option behind ``build(compile=...)``."""

from __future__ import annotations

import pytest
import yaml

from optiplug.cli import main

RECIPE = {
    "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
    "schedules": {
        "lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
        "momentum": {"name": "cosine", "start_value": 0.9, "end_value": 0.8},
    },
    "run": {"num_epochs": 2, "steps_per_epoch": 10},
}


@pytest.fixture
def recipe_file(tmp_path):
    def write(recipe):
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        return str(path)

    return write


def test_check_compile_names_the_flag_and_the_option_it_cannot_hold_as_a_tensor(recipe_file, capsys):
    assert main(["check", recipe_file(RECIPE), "--compile"]) != 0
    err = capsys.readouterr().err
    assert "--compile: SGD takes momentum only as a Python number" in err
    assert "build(compile" not in err and "run.compile" not in err


def test_no_compile_wins_over_the_recipes_run_compile(recipe_file, capsys):
    path = recipe_file({**RECIPE, "run": {**RECIPE["run"], "compile": True}})
    assert main(["check", path]) != 0
    assert "run.compile: SGD takes momentum only" in capsys.readouterr().err
    assert main(["check", path, "--no-compile"]) == 0


def test_check_compile_shows_the_options_as_numbers(recipe_file, capsys):
    recipe = {**RECIPE, "schedules": {"lr": RECIPE["schedules"]["lr"]}}
    assert main(["check", recipe_file(recipe), "--compile"]) == 0
    out = capsys.readouterr().out
    assert "lr=0.1" in out and "tensor(" not in out
