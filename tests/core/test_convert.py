"""``optiplug convert``: VISSL and MMCV configs as canonical recipes that build the same values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import optiplug
from optiplug.cli import main
from optiplug.tooling.conversion import converted_recipe, differences, plain, recipe_yaml
from optiplug.tooling.curves import compute_curves

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# (config, run figures as build() arguments): VISSL seed-page examples and MMSelfSup tutorial examples
CASES = [
    ("vissl/linear_warmup_cosine.yaml", {"steps_per_epoch": 7, "num_epochs": 20}),
    ("vissl/multiple_linear_warmups_cosine.yaml", {"steps_per_epoch": 5}),
    ("vissl/auto_scaling.yaml", {"steps_per_epoch": 4, "batch_size_per_device": 32, "world_size": 16}),
    ("vissl/head.yaml", {"steps_per_epoch": 3}),
    ("vissl/larc.yaml", {"steps_per_epoch": 3}),
    ("mmcv/warmup_linear_by_iter.py", {"steps_per_epoch": 300, "num_epochs": 12}),
    ("mmcv/cyclic_lr_momentum.py", {"steps_per_epoch": 11}),
    ("mmcv/simclr_lars_cosine.py", {"steps_per_epoch": 6}),
    ("mmcv/accumulate_64x4.py", {"steps_per_epoch": 8, "num_epochs": 3}),
]
FLAGS = {
    "steps_per_epoch": "--steps-per-epoch",
    "num_epochs": "--epochs",
    "batch_size_per_device": "--batch-size",
    "world_size": "--world-size",
}


def flags(figures):
    return [item for key, value in figures.items() for item in (FLAGS[key], str(value))]


def assert_same_build(original, converted):
    """Same optimizer class, same parameters in the same groups, same value of every option at every update."""
    assert type(converted.optimizer) is type(original.optimizer)
    assert converted.clock == original.clock
    assert [g.names for g in converted.groups] == [g.names for g in original.groups]
    for a, b in zip(original.optimizer.param_groups, converted.optimizer.param_groups, strict=True):
        assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}
    first, second = compute_curves(original), compute_curves(converted)
    assert first.values.keys() == second.values.keys()
    for option, values in first.values.items():
        assert torch.equal(values, second.values[option]), option


@pytest.mark.parametrize(("name", "figures"), CASES, ids=[c[0] for c in CASES])
def test_the_converted_file_builds_what_the_original_builds(capsys, tmp_path, conv_bn_head, name, figures):
    source = EXAMPLES / name
    output = tmp_path / "recipe.yaml"
    assert main(["convert", str(source), "--to", "canonical", "-o", str(output), *flags(figures)]) == 0
    err = capsys.readouterr().err
    assert f"wrote {output}" in err and "checked: the same optimizer" in err and "every update" in err

    written = yaml.safe_load(output.read_text())
    assert "OPTIMIZER" not in written and "type" not in written["optimizer"]  # canonical, not the dialect
    for key, value in figures.items():
        assert written["run"][key] == value  # the run figures travel with the recipe
    original = optiplug.build(str(source), conv_bn_head, **figures)
    converted = optiplug.build(str(output), conv_bn_head)  # no arguments: the file says everything
    assert_same_build(original, converted)


def test_a_converted_recipe_is_a_fixed_point(tmp_path):
    """Converting the canonical output again writes the same recipe."""
    first = tmp_path / "first.yaml"
    source = EXAMPLES / "vissl/linear_warmup_cosine.yaml"
    assert main(["convert", str(source), "-o", str(first), "--steps-per-epoch", "7", "--epochs", "20"]) == 0
    second = tmp_path / "second.yaml"
    assert main(["convert", str(first), "-o", str(second)]) == 0
    assert yaml.safe_load(second.read_text()) == yaml.safe_load(first.read_text())


def test_batch_scaling_stays_in_the_recipe_and_applies_once(tmp_path, conv_bn_head):
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        "lr_scaling": {"base_batch_size": 256},
    }
    recipe = converted_recipe(config, steps_per_epoch=5, num_epochs=2, batch_size_per_device=64, world_size=8)
    data = yaml.safe_load(recipe_yaml(recipe))
    assert data["lr_scaling"] == {"base_batch_size": 256}
    assert data["schedules"]["lr"]["start_value"] == 0.1  # not scaled in the file...
    built = optiplug.build(data, conv_bn_head)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 64 * 8 / 256)  # ...scaled when built
    original = optiplug.build(config, conv_bn_head, steps_per_epoch=5, num_epochs=2, batch_size_per_device=64,
                              world_size=8)  # fmt: skip
    assert differences(original, built) == []


def test_json_output_and_stdout(capsys, tmp_path):
    source = EXAMPLES / "mmcv/sgd.py"
    assert main(["convert", str(source)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"# optiplug convert: {source} as the canonical recipe\n")
    from_stdout = yaml.safe_load(captured.out)
    assert main(["convert", str(source), "-o", str(tmp_path / "sgd.json")]) == 0
    import json

    assert json.loads((tmp_path / "sgd.json").read_text()) == from_stdout
    assert from_stdout["optimizer"] == {"name": "SGD", "lr": 0.0003, "weight_decay": 0.0001}  # as sgd.py says


def test_without_the_run_length_the_recipe_is_written_but_not_checked(capsys):
    assert main(["convert", str(EXAMPLES / "vissl/cosine.yaml")]) == 0
    captured = capsys.readouterr()
    assert "run: {num_epochs: 90}" in captured.out  # VISSL's default num_epochs, written out
    assert captured.err.strip() == (
        "not checked: the run's length is unknown; pass --steps-per-epoch to write it into run and check the values"
    )


def test_differences_names_what_differs(conv_bn_head):
    base = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
        "run": {"num_epochs": 2, "steps_per_epoch": 5},
    }
    other = base | {"schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.01}}}
    found = differences(optiplug.build(base, conv_bn_head), optiplug.build(other, conv_bn_head))
    w = 1 / 10  # update 1 of 10: fvcore's linear, end * w + start * (1 - w)
    assert found == [f"lr of group 0 at update 1: {0.0 * w + 0.1 * (1 - w)!r} != {0.01 * w + 0.1 * (1 - w)!r}"]
    adam = base | {"optimizer": {"name": "adam", "lr": 0.1}}
    assert (
        differences(optiplug.build(base, conv_bn_head), optiplug.build(adam, conv_bn_head))[0]
        == "optimizer SGD != Adam"
    )


def test_plain_refuses_objects_a_file_cannot_hold():
    assert plain({"a": (1, 2.5, None, True)}) == {"a": [1, 2.5, None, True]}
    with pytest.raises(optiplug.ConfigError, match="cannot express"):
        plain({"a": object()})


def test_errors_are_one_line(capsys, tmp_path):
    def error(args):
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("optiplug: error: ")
        return err[0]

    source = str(EXAMPLES / "mmcv/sgd.py")
    assert "the output must end in .yaml, .yml or .json" in error(["convert", source, "-o", str(tmp_path / "x.txt")])
    assert "config file not found" in error(["convert", str(tmp_path / "missing.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIMIZER: {name: sgdd}\n")
    assert "OPTIMIZER.name" in error(["convert", str(bad), "--steps-per-epoch", "3"])
    assert main(["convert", source, "--to", "vissl"]) == 2  # argparse: only canonical is written


def test_check_prints_a_recipe_that_builds_the_same_without_arguments(capsys, tmp_path, conv_bn_head):
    """check's YAML has the lr scaling applied (and removed) and the command line's run figures in run."""
    config = tmp_path / "scaled.yaml"
    config.write_text(
        "optimizer: {name: sgd, lr: 0.1}\nlr_scaling: {base_batch_size: 256}\n"
        "schedules: {lr: {name: cosine, start_value: 0.1, end_value: 0.0}}\n"
    )
    args = ["--epochs", "2", "--steps-per-epoch", "5", "--batch-size", "64", "--world-size", "8"]
    assert main(["check", str(config), *args]) == 0
    printed = yaml.safe_load(capsys.readouterr().out.partition("\n\n")[0])
    assert "lr_scaling" not in printed
    original = optiplug.build(str(config), conv_bn_head, 5, 2, 64, 8)
    assert differences(original, optiplug.build(printed, conv_bn_head)) == []


def test_the_command_checks_its_output_on_the_example_model(capsys, monkeypatch):
    """A translation bug (here: a value lost on the way to the file) is reported, not written."""
    import optiplug.tooling.conversion

    real = optiplug.tooling.conversion.recipe_data

    def lossy(recipe, registry=None):
        data = real(recipe, registry)
        data["optimizer"]["momentum"] = 0.5
        return data

    monkeypatch.setattr(optiplug.tooling.conversion, "recipe_data", lossy)
    source = str(EXAMPLES / "mmcv/sgd.py")
    assert main(["convert", source]) == 1
    err = capsys.readouterr().err
    assert "does not build the same values as the original" in err and "group 0 option momentum: 0 != 0.5" in err


def test_a_warning_is_shown_once(capsys, tmp_path):
    config = tmp_path / "rule.yaml"
    config.write_text(
        "optimizer: {name: sgd, lr: 0.1}\nrules: [{kind: regex, pattern: '^classifier\\.', set: {lr_mult: 2}}]\n"
    )
    assert main(["convert", str(config)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("optiplug: warning:")]
    assert len(warnings) == 1 and "matches no trainable parameter" in warnings[0]
