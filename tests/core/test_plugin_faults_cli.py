"""Broken, conflicting and blocked plugins as ``optiplug plugins`` shows them, with real (fake) distributions.

A plugin that fails at import or in a hook is listed with its distribution and its
error while every other command keeps working; two plugins providing one name are
listed with every clash, and only a config using that name fails, with one line naming
both distributions and the ``OPTIPLUG_DISABLE_PLUGINS`` value that resolves it; ``OPTIPLUG_DISABLE_PLUGINS``
blocks a plugin by name without importing it.
"""

from __future__ import annotations

import json

import pytest
import torch

import optiplug
from optiplug.cli import main

LION = """
import torch
import optiplug

class Lion(torch.optim.SGD):
    pass

@optiplug.hookimpl
def optiplug_optimizers():
    return [optiplug.OptimizerSpec(name="lion", factory=Lion, description="Lion")]
"""
RAISES_AT_IMPORT = "raise RuntimeError('cannot load the CUDA kernel')\n"
HOOK_RAISES = """
import optiplug

@optiplug.hookimpl
def optiplug_schedules():
    raise ValueError('bad record')
"""
RECIPE = "optimizer: {name: sgd, lr: 0.1}\nschedules:\n  lr: {name: cosine, start_value: 0.1, end_value: 0}\n"


def plugin_rows(capsys):
    assert main(["plugins", "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def plugin_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["plugins"]) == 0
    return capsys.readouterr().out


def the_rest_works(capsys, tmp_path):
    """``check`` and ``build`` with first-party plugins, whatever happened to the fake one."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    assert main(["check", str(recipe), "--epochs", "2", "--steps-per-epoch", "3"]) == 0
    assert "cosine" in capsys.readouterr().out
    built = optiplug.build(str(recipe), torch.nn.Linear(2, 1), steps_per_epoch=3, num_epochs=2)
    assert type(built.optimizer) is torch.optim.SGD


def test_a_plugin_failing_at_import_is_listed_with_its_error(fake_distribution, capsys, monkeypatch, tmp_path):
    fake_distribution("optiplug-kernels", {"kernels": "kernels_plugin"}, {"kernels_plugin": RAISES_AT_IMPORT}, "0.3")
    row = plugin_rows(capsys)["kernels"]
    assert (row["distribution"], row["version"], row["status"]) == ("optiplug-kernels", "0.3", "failed")
    assert row["error"].startswith("RuntimeError: cannot load the CUDA kernel (")
    assert "kernels_plugin.py:1)" in row["error"]
    table = plugin_table(capsys, monkeypatch)
    assert "optiplug-kernels" in table and "failed" in table
    assert "error: RuntimeError: cannot load the CUDA kernel" in table
    the_rest_works(capsys, tmp_path)


def test_a_name_only_the_broken_plugin_could_provide_says_it_failed(fake_distribution, capsys, tmp_path):
    fake_distribution("optiplug-kernels", {"kernels": "kernels_plugin"}, {"kernels_plugin": RAISES_AT_IMPORT})
    recipe = tmp_path / "fused.yaml"
    recipe.write_text("optimizer: {name: fused_lamb, lr: 0.1}\n")
    assert main(["check", str(recipe)]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("optiplug: error: optimizer.name: unknown optimizer 'fused_lamb'")
    assert "plugin 'kernels' (optiplug-kernels) failed to load: RuntimeError: cannot load the CUDA kernel" in line


def test_a_hook_raising_while_registering_is_listed_the_same_way(fake_distribution, capsys, monkeypatch, tmp_path):
    fake_distribution("optiplug-badhook", {"badhook": "badhook_plugin"}, {"badhook_plugin": HOOK_RAISES})
    row = plugin_rows(capsys)["badhook"]
    assert (row["distribution"], row["status"]) == ("optiplug-badhook", "failed")
    assert "optiplug_schedules() raised ValueError: bad record" in row["error"]
    assert row["provides"] == {}
    assert "error: optiplug_schedules() raised ValueError: bad record" in plugin_table(capsys, monkeypatch)
    the_rest_works(capsys, tmp_path)


def test_two_plugins_providing_one_name_are_all_listed_with_every_clash(
    fake_distribution, capsys, monkeypatch, tmp_path
):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    fake_distribution("optiplug-lion-fork", {"lionfork": "lionfork_plugin"}, {"lionfork_plugin": LION})
    fake_distribution("optiplug-sgd", {"mysgd": "mysgd_plugin"}, {"mysgd_plugin": LION.replace('"lion"', '"SGD"')})
    rows = plugin_rows(capsys)
    assert rows["lion"]["status"] == rows["lionfork"]["status"] == "loaded"
    assert rows["lionfork"]["provides"] == {"optimizers": ["lion"]}
    assert len(rows["lion"]["clashes"]) == 1 and "OPTIPLUG_DISABLE_PLUGINS=lionfork" in rows["lion"]["clashes"][0]
    assert len(rows["torch"]["clashes"]) == 1 and "optimizer 'SGD'" in rows["torch"]["clashes"][0]
    table = plugin_table(capsys, monkeypatch)
    assert "2 names provided by several plugins" in table
    assert "optimizer 'lion' is provided twice: by plugin 'lion' (optiplug-lion) and by plugin 'lionfork'" in table
    assert "OPTIPLUG_DISABLE_PLUGINS=mysgd keeps plugin 'torch'" in table
    adam = tmp_path / "adam.yaml"
    adam.write_text("optimizer: {name: adam, lr: 0.1}\n")
    assert main(["check", str(adam)]) == 0  # a name nobody else provides still builds


def test_a_config_using_a_clashing_name_fails_naming_both_and_the_fix(fake_distribution, capsys, monkeypatch, tmp_path):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    fake_distribution("optiplug-lion-fork", {"lionfork": "lionfork_plugin"}, {"lionfork_plugin": LION})
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "cyclic")
    optiplug.plugin_system.host.reset()
    config = tmp_path / "lion.yaml"
    config.write_text("optimizer: {name: lion, lr: 0.1}\n")
    assert main(["check", str(config)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("optiplug: error: optimizer.name: optimizer 'lion' is provided twice")
    assert "plugin 'lion' (optiplug-lion)" in lines[0] and "plugin 'lionfork' (optiplug-lion-fork)" in lines[0]
    assert "OPTIPLUG_DISABLE_PLUGINS=cyclic,lionfork keeps plugin 'lion'" in lines[0]
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "cyclic,lionfork")
    optiplug.plugin_system.host.reset()
    assert main(["check", str(config)]) == 0


def test_blocking_one_of_two_conflicting_plugins_resolves_the_conflict(fake_distribution, capsys, monkeypatch):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    fake_distribution("optiplug-lion-fork", {"lionfork": "lionfork_plugin"}, {"lionfork_plugin": LION})
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "lionfork")
    optiplug.plugin_system.host.reset()
    rows = plugin_rows(capsys)
    assert rows["lionfork"]["status"] == "blocked"
    assert (rows["lion"]["status"], rows["lion"]["provides"]) == ("loaded", {"optimizers": ["lion"]})


def test_a_blocked_plugin_is_not_even_imported(fake_distribution, capsys, monkeypatch, tmp_path):
    marker = tmp_path / "imported"
    source = f"open({str(marker)!r}, 'w').close()\n" + RAISES_AT_IMPORT
    fake_distribution("optiplug-kernels", {"kernels": "kernels_plugin"}, {"kernels_plugin": source})
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "kernels, cyclic")
    optiplug.plugin_system.host.reset()
    rows = plugin_rows(capsys)
    assert not marker.exists()
    assert (rows["kernels"]["status"], rows["kernels"]["error"]) == ("blocked", None)
    assert (rows["cyclic"]["status"], rows["cyclic"]["provides"]) == ("blocked", {})
    assert rows["torch"]["status"] == "loaded"
    assert "blocked" in plugin_table(capsys, monkeypatch)
    the_rest_works(capsys, tmp_path)


@pytest.mark.parametrize(("blocked", "schedule"), [("restarts", "restarts"), ("cyclic", "triangular")])
def test_a_config_needing_a_blocked_first_party_plugin_is_a_config_error(
    blocked, schedule, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", blocked)
    optiplug.plugin_system.host.reset()
    config = tmp_path / "recipe.yaml"
    config.write_text(f"optimizer: {{name: sgd, lr: 0.1}}\nschedules: {{lr: {{name: {schedule}}}}}\n")
    assert main(["check", str(config), "--steps-per-epoch", "2", "--epochs", "2"]) == 1
    line = capsys.readouterr().err.strip()
    assert f"schedules.lr.name: unknown schedule {schedule!r}" in line


@pytest.mark.parametrize("blocked", ["restarts", "cyclic"])
def test_mmcv_policies_belong_to_the_mmcv_plugin_not_to_the_algorithm_plugins(blocked, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", blocked)
    optiplug.plugin_system.host.reset()
    policy = {"restarts": "dict(policy='CosineRestart', periods=[4], min_lr=0, by_epoch=False)"}.get(
        blocked, "dict(policy='Cyclic')"
    )
    config = tmp_path / "config.py"
    config.write_text(f"optimizer = dict(type='SGD', lr=0.1)\nlr_config = {policy}\n")
    assert main(["check", str(config), "--steps-per-epoch", "2", "--epochs", "2"]) == 0
