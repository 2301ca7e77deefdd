"""The ``optiplug`` command, run in-process: every subcommand, its errors and its help."""

from __future__ import annotations

import json
import math
import struct
import textwrap

import pytest
import torch
import yaml

import optiplug
import optiplug.tooling.plotting
from optiplug.cli import main
from optiplug.plugin_system.host import PluginHost, use_host
from optiplug.tooling.curves import compute_curves
from optiplug.tooling.demo import example_model
from optiplug.tooling.recipes import recipe_path

RECIPE = """\
optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
rules:
  - {kind: norm, set: {weight_decay: 0}}
  - {kind: regex, pattern: '^head\\.', set: {lr_mult: 10}}
schedules:
  lr: {name: cosine, start_value: 0.1, end_value: 0.0}
run: {num_epochs: 3, steps_per_epoch: 8}
"""


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    return path


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def curve_lines(ax):
    """The plotted curves of a panel (not the epoch marks, whose labels start with '_')."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def error_line(capsys, code):
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("optiplug: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


# -- plugins -------------------------------------------------------------------------------------------------------


def test_plugins_table_lists_every_plugin_and_what_it_provides(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for plugin in optiplug.get_registry().plugins:
        assert plugin.name in out
    assert "schedules: composite" in out
    assert "rule kinds: all, bias, module_path" in out
    assert "optimizers: ASGD" in out


def test_plugins_json_is_machine_readable(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    registry = optiplug.get_registry()
    assert set(rows) == {p.name for p in registry.plugins}
    assert rows["core"]["status"] == "loaded" and rows["core"]["distribution"] == "optiplug"
    assert rows["core"]["provides"]["schedules"] == ["composite"]
    assert "SGD" in rows["torch"]["provides"]["optimizers"]
    assert rows["torch"]["version"] == optiplug.__version__


def test_plugins_shows_blocked_and_broken_plugins_with_their_error(capsys, monkeypatch):
    class Broken:
        @optiplug.hookimpl
        def optiplug_schedules(self):
            raise RuntimeError("cannot import the kernel")

    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "torch")
    with use_host(PluginHost(plugins=[("broken_demo", Broken())])):
        assert main(["plugins", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows["torch"]["status"] == "blocked"
        assert rows["broken_demo"]["status"] == "failed"
        assert "RuntimeError: cannot import the kernel" in rows["broken_demo"]["error"]
        monkeypatch.setenv("COLUMNS", "200")
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert "blocked" in out and "error: optiplug_schedules() raised RuntimeError: cannot import the kernel" in out


# -- check ---------------------------------------------------------------------------------------------------------


def test_check_prints_the_resolved_recipe_and_the_groups(capsys, monkeypatch, recipe_file):
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["check", str(recipe_file), "--model", "convnet"]) == 0
    out = capsys.readouterr().out
    resolved_text, _, table = out.partition("\n\n")
    printed = yaml.safe_load(resolved_text)
    assert optiplug.to_recipe(printed) == optiplug.to_recipe(str(recipe_file))  # it reads back as the same recipe
    assert printed["optimizer"]["name"] == "SGD"
    assert printed["run"] == {"num_epochs": 3, "steps_per_epoch": 8}  # fields at their defaults left out
    assert "3 param groups of example model 'convnet'" in table
    assert "head.weight" in table and "conv1.weight" in table
    assert "lr=0.1" in table and "lr=1" in table  # the head at 10x at update 0 (cosine starts at its peak)
    assert "24 updates = 3 epochs × 8 updates/epoch" in table


def test_check_shows_the_lr_after_batch_scaling(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer: {name: sgd, lr: 0.1}
        lr_scaling: {base_batch_size: 256}
        schedules: {lr: {name: cosine, start_value: 0.1, end_value: 0.0}}
        """,
    )
    args = ["check", str(config), "--epochs", "2", "--steps-per-epoch", "5", "--batch-size", "64", "--world-size", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    printed = yaml.safe_load(out.partition("\n\n")[0])
    assert printed["schedules"]["lr"]["start_value"] == pytest.approx(0.1 * 64 * 8 / 256)
    assert "10 updates = 2 epochs × 5 updates/epoch, batch 64 × 8 devices" in " ".join(out.split())


def test_check_without_schedules_needs_no_run_length(capsys, tmp_path):
    config = write(tmp_path, "optimizer: {name: adamw, lr: 0.001}\n", name="plain.json")
    config.write_text(json.dumps({"optimizer": {"name": "adamw", "lr": 0.001}}))
    assert main(["check", str(config), "--model", "vit_like", "--dialect", "canonical"]) == 0
    out = capsys.readouterr().out
    assert "AdamW: 1 param group of example model 'vit_like'" in out
    assert "an open-ended run, 1 update per epoch" in out


def test_check_reports_a_rule_that_matches_nothing_as_a_warning(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer: {name: sgd, lr: 0.1}
        rules: [{kind: regex, pattern: '^classifier\\.', set: {lr_mult: 10}}]
        """,
    )
    assert main(["check", str(config)]) == 0
    err = capsys.readouterr().err
    assert "optiplug: warning: rules[0] (regex(pattern='^classifier\\\\.')) matches no trainable parameter" in err


def test_check_a_missing_file(capsys, tmp_path):
    line = error_line(capsys, main(["check", str(tmp_path / "nope.yaml")]))
    assert line == f"optiplug: error: config file not found: {tmp_path / 'nope.yaml'}"


def test_check_an_unknown_schedule_suggests_the_name(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer: {name: sgd, lr: 0.1}
        schedules: {lr: {name: cosin, start_value: 0.1, end_value: 0}}
        run: {num_epochs: 2, steps_per_epoch: 3}
        """,
    )
    line = error_line(capsys, main(["check", str(config)]))
    assert "schedules.lr.name: unknown schedule 'cosin' (did you mean 'cosine'?)" in line


def test_several_problems_are_listed_one_a_line(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer: {name: sgd, lr: 0.1}
        clip: {max_norm: -1}
        accumulation: {steps: 0}
        """,
    )
    assert main(["check", str(config)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "optiplug: error: 2 problems in the config:"
    assert lines[1].startswith("  - clip.max_norm: must be > 0, got -1")
    assert lines[2] == "  - accumulation.steps: must be > 0, got 0"
    assert len(lines) == 3


def test_check_other_errors(capsys, recipe_file, tmp_path):
    assert "unknown example model 'vitlike' (did you mean 'vit_like'?)" in error_line(
        capsys, main(["check", str(recipe_file), "--model", "vitlike"])
    )
    assert "unknown config dialect 'visl' (did you mean 'vissl'?)" in error_line(
        capsys, main(["check", str(recipe_file), "--dialect", "visl"])
    )
    no_length = write(tmp_path, "schedules: {lr: {name: cosine, start_value: 0.1, end_value: 0}}\n")
    assert "pass --steps-per-epoch and --epochs" in error_line(capsys, main(["check", str(no_length)]))
    assert "pass --epochs" in error_line(capsys, main(["check", str(no_length), "--steps-per-epoch", "3"]))


def test_debug_shows_the_traceback(recipe_file):
    with pytest.raises(optiplug.ConfigError, match="unknown example model"):
        main(["--debug", "check", str(recipe_file), "--model", "vit"])
    with pytest.raises(optiplug.ConfigError, match="unknown example model"):
        main(["check", str(recipe_file), "--model", "vit", "--debug"])


# -- plot ----------------------------------------------------------------------------------------------------------


def test_plot_writes_the_png_of_the_curves_and_a_terminal_preview(capsys, monkeypatch, recipe_file, tmp_path):
    figures = []
    save = optiplug.tooling.plotting.save_figure
    monkeypatch.setattr(
        optiplug.tooling.plotting, "save_figure", lambda fig, path: figures.append(fig) or save(fig, path)
    )
    output = tmp_path / "out" / "curves.png"
    assert main(["plot", str(recipe_file), "-o", str(output), "--model", "convnet"]) == 0
    width, height = png_size(output)
    assert width > 600 and height > 400
    out = capsys.readouterr().out
    assert f"wrote {output}" in out
    last = 0.05 * (1 + math.cos(math.pi * 23 / 24))
    assert f"first 0.1 · last {last:.4g} · min {last:.4g} · max 0.1 (update 0) · 24 updates" in out
    assert f"first 1 · last {10 * last:.4g}" in out  # the head's 10x curve

    built = optiplug.build(str(recipe_file), example_model("convnet"))
    expected = compute_curves(built)
    lr_panel, momentum_panel, decay_panel = figures[0].axes[:3]
    plotted = [(line.get_label(), torch.as_tensor(line.get_ydata())) for line in curve_lines(lr_panel)]
    curves = {groups: curve for groups, curve in expected.distinct("lr")}
    assert len(plotted) == len(curves) == 2
    for (_, ydata), curve in zip(plotted, curves.values(), strict=True):
        assert torch.equal(ydata, curve)
    assert [label for label, _ in plotted] == [
        "max 0.1: groups 0, 1 (8 tensors): (no rule); norm",
        "max 1: group 2 (2 tensors): regex(pattern='^head\\\\.')",
    ]
    assert lr_panel.get_title(loc="left") == "learning rate (scheduled)"
    assert momentum_panel.get_title(loc="left") == "momentum (constant)"
    assert {float(y) for line in curve_lines(decay_panel) for y in line.get_ydata()} == {0.0, 1e-4}


def test_plot_log_scale_and_length_from_the_command_line(monkeypatch, tmp_path, capsys):
    figures = []
    monkeypatch.setattr(optiplug.tooling.plotting, "save_figure", lambda fig, path: figures.append(fig) or path)
    config = write(
        tmp_path,
        "optimizer: {name: adam, lr: 0.001}\nschedules: {beta1: {name: linear, start_value: 0.8, end_value: 0.9},\n"
        "  lr: {name: exponential, start_value: 0.001, decay: 0.01}}\n",
    )
    args = ["plot", str(config), "--log", "--epochs", "4", "--steps-per-epoch", "5", "-o", str(tmp_path / "a.png")]
    assert main(args) == 0
    lr_panel, beta_panel = figures[0].axes[:2]
    assert lr_panel.get_yscale() == "log"
    assert beta_panel.get_title(loc="left") == "beta1 = betas[0] (scheduled)"
    assert torch.equal(
        torch.as_tensor(curve_lines(beta_panel)[0].get_ydata())[:2],
        torch.tensor([0.8, 0.8 + 0.1 / 20], dtype=torch.float64),
    )
    assert "20 updates" in capsys.readouterr().out


def test_plot_needs_the_run_length(capsys, tmp_path):
    # a schedule needs it (a config without one is drawn over an epoch: test_cli_user_edge)
    config = write(
        tmp_path, "optimizer: {name: sgd, lr: 0.1}\nschedules: {lr: {name: linear, start_value: 0.1, end_value: 0}}\n"
    )
    assert "pass --steps-per-epoch and --epochs" in error_line(capsys, main(["plot", str(config)]))


# -- run -----------------------------------------------------------------------------------------------------------


def test_run_trains_the_demo_and_writes_the_curves_and_the_loss(capsys, monkeypatch, tmp_path):
    figures = []
    save = optiplug.tooling.plotting.save_png
    monkeypatch.setattr(optiplug.tooling.plotting, "save_png", lambda fig, path: figures.append(fig) or save(fig, path))
    assert main(["run", "-o", str(tmp_path), "--epochs", "2", "--steps-per-epoch", "10"]) == 0
    png_size(tmp_path / "optiplug-run.png")
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'optiplug-run.png'}" in out
    assert "final loss " in out and "accuracy" in out
    loss_panel = figures[0].axes[3]
    assert loss_panel.get_title(loc="left") == "training loss (cross-entropy)"
    assert len(curve_lines(loss_panel)[0].get_ydata()) == 20


def test_run_with_a_user_recipe(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer: {name: adamw, lr: 0.01, weight_decay: 0.01}
        rules: [{kind: norm, set: {weight_decay: 0}}]
        schedules: {lr: {name: linear, start_value: 0.01, end_value: 0.0}}
        accumulation: {steps: 2}
        """,
    )
    assert main(["run", str(config), "-o", str(tmp_path / "run"), "--epochs", "1", "--steps-per-epoch", "6"]) == 0
    assert (tmp_path / "run" / "optiplug-run.png").exists()
    assert "first update" in capsys.readouterr().out


def test_the_embedded_recipe_is_package_data():
    path = recipe_path()
    assert path.name == "default.yaml" and path.is_file()
    recipe = optiplug.to_recipe(path)
    assert recipe.optimizer.name == "SGD" and recipe.schedules["lr"].name == "composite"
    assert [rule.kind for rule in recipe.rules] == ["norm", "bias"]


def test_run_with_a_broken_recipe(capsys, tmp_path):
    config = write(tmp_path, "optimizer: {name: sgdd, lr: 0.1}\n")
    assert "optimizer.name: unknown optimizer 'sgdd' (did you mean 'SGD'?)" in error_line(
        capsys, main(["run", str(config)])
    )


# -- schema --------------------------------------------------------------------------------------------------------


def test_schema_to_stdout_and_to_a_file(capsys, tmp_path):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert main(["schema", "-o", str(tmp_path / "schema.json")]) == 0
    assert json.loads((tmp_path / "schema.json").read_text()) == printed
    assert printed["$schema"].endswith("2020-12/schema")
    names = {branch["properties"]["name"].get("const") for branch in printed["$defs"]["Schedule"]["oneOf"]}
    assert set(optiplug.get_registry().schedules.names()) <= names


# -- help and usage ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["plugins"], ["check"], ["convert"], ["plot"], ["run"], ["schema"]])
def test_every_command_has_help_with_an_example(capsys, command):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: optiplug")
    assert "example" in out and "optiplug " in out.split("example", 1)[1]


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["check"]) == 2
    assert "the following arguments are required: CONFIG" in capsys.readouterr().err
    assert main(["plot", "x.yaml", "--epochs", "0"]) == 2
    assert "must be > 0, got 0" in capsys.readouterr().err


def test_an_interrupted_command_says_so_in_one_line(capsys, monkeypatch):
    import attrs

    from optiplug.cli.commands import run

    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "COMMAND", attrs.evolve(run.COMMAND, run=interrupted))
    assert main(["run"]) == 130
    assert capsys.readouterr().err == "optiplug: interrupted\n"
