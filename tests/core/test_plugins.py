"""Plugin discovery: real entry points, fake third-party distributions, faults and blocking."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import torch

import optiplug
from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.manager import make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]

LION = """
import torch
import optiplug

class Lion(torch.optim.SGD):
    pass

@optiplug.hookimpl
def optiplug_optimizers():
    return [optiplug.OptimizerSpec(name="lion", factory=Lion, description="Lion")]
"""


def test_installed_distribution_declares_every_first_party_plugin():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["optiplug"]
    installed = {
        ep.name: ep.value for ep in metadata.entry_points(group="optiplug") if ep.dist.metadata["Name"] == "optiplug"
    }
    assert installed == declared
    packages = {p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("optiplug_")}
    assert {v for v in declared.values() if v.startswith("optiplug_")} == packages


def test_first_party_plugins_load_through_entry_points():
    registry = optiplug.get_registry()
    records = {r.name: r for r in registry.plugins}
    assert records["torch"].status == "loaded"
    assert records["torch"].distribution == "optiplug"
    assert registry.optimizers.provided("sgd").plugin == "torch"
    assert registry.schedules.provided("composite").plugin == "core"


def test_third_party_plugin_is_found(fake_distribution):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION}, version="2.5")
    registry = optiplug.get_registry()
    provided = registry.optimizers.provided("LION")
    assert (provided.plugin, provided.distribution) == ("lion", "optiplug-lion")
    assert registry.provided_by("lion") == {"optimizer": ["lion"]}
    record = next(r for r in registry.plugins if r.name == "lion")
    assert (record.version, record.status) == ("2.5", "loaded")


def test_plugin_failing_at_import_is_reported_and_others_work(fake_distribution):
    fake_distribution("optiplug-broken", {"broken": "broken_plugin"}, {"broken_plugin": "raise RuntimeError('boom')\n"})
    registry = optiplug.get_registry()
    record = next(r for r in registry.plugins if r.name == "broken")
    assert record.status == "failed"
    assert "RuntimeError: boom" in record.error
    assert "sgd" in registry.optimizers
    with pytest.raises(
        optiplug.ConfigError, match=r"plugin 'broken' \(optiplug-broken\) failed to load: RuntimeError: boom"
    ):
        registry.optimizers.get("lion")


def test_hook_raising_while_registering_marks_the_plugin_failed(fake_distribution):
    source = "import optiplug\n\n@optiplug.hookimpl\ndef optiplug_schedules():\n    raise ValueError('bad record')\n"
    fake_distribution("optiplug-badhook", {"badhook": "badhook_plugin"}, {"badhook_plugin": source})
    registry = optiplug.get_registry()
    record = next(r for r in registry.plugins if r.name == "badhook")
    assert record.status == "failed"
    assert "optiplug_schedules() raised ValueError: bad record" in record.error
    assert "cosine" in registry.schedules


def test_misspelled_hook_fails_the_plugin(fake_distribution):
    source = "import optiplug\n\n@optiplug.hookimpl\ndef optiplug_optimisers():\n    return []\n"
    fake_distribution("optiplug-typo", {"typo": "typo_plugin"}, {"typo_plugin": source})
    record = next(r for r in optiplug.get_registry().plugins if r.name == "typo")
    assert record.status == "failed"
    assert "optiplug_optimisers" in record.error


def test_wrong_record_type_is_blamed_on_the_plugin(fake_distribution):
    source = "import optiplug\n\n@optiplug.hookimpl\ndef optiplug_optimizers():\n    return ['sgd']\n"
    fake_distribution("optiplug-wrong", {"wrong": "wrong_plugin"}, {"wrong_plugin": source})
    record = next(r for r in optiplug.get_registry().plugins if r.name == "wrong")
    assert record.status == "failed"
    assert "expected OptimizerSpec records" in record.error


def test_two_plugins_providing_one_name_fail_naming_both_only_when_the_name_is_used(fake_distribution):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    fake_distribution("optiplug-lion2", {"lion2": "lion2_plugin"}, {"lion2_plugin": LION})
    registry = optiplug.get_registry()
    assert [(c.kind, c.name) for c in registry.clashes()] == [("optimizer", "lion")]
    assert "sgd" in registry.optimizers and registry.optimizers.get("sgd")
    with pytest.raises(optiplug.PluginError) as info:
        registry.optimizers.get("lion", "optimizer.name")
    message = str(info.value)
    assert message.startswith("optimizer.name: optimizer 'lion' is provided twice")
    assert "optiplug-lion" in message and "optiplug-lion2" in message
    assert "OPTIPLUG_DISABLE_PLUGINS=lion2 keeps plugin 'lion'" in message
    assert "OPTIPLUG_DISABLE_PLUGINS=lion keeps plugin 'lion2'" in message
    with pytest.raises(optiplug.ConfigError, match="optimizer.name: optimizer 'lion' is provided twice"):
        optiplug.build({"optimizer": {"name": "LION", "lr": 0.1}}, torch.nn.Linear(2, 1))


def test_shadowing_a_builtin_name_is_a_conflict(fake_distribution):
    source = LION.replace('name="lion"', 'name="SGD"')
    fake_distribution("optiplug-sgd", {"mysgd": "mysgd_plugin"}, {"mysgd_plugin": source})
    with pytest.raises(optiplug.ConfigError, match=r"optimizer 'SGD' is provided twice") as info:
        optiplug.build({"optimizer": {"name": "sgd", "lr": 0.1}}, torch.nn.Linear(2, 1))
    assert "plugin 'torch' (optiplug)" in str(info.value)
    assert "plugin 'mysgd' (optiplug-sgd)" in str(info.value)
    assert optiplug.build({"optimizer": {"name": "adam", "lr": 0.1}}, torch.nn.Linear(2, 1)).optimizer


def test_two_entry_points_of_one_name_keep_the_first_and_list_the_second_as_failed(fake_distribution):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    fake_distribution("optiplug-lion-again", {"lion": "lion_again_plugin"}, {"lion_again_plugin": LION})
    records = {r.name: r for r in optiplug.get_registry().plugins}
    failed = [r for r in records.values() if r.name.startswith("lion (")]
    assert records["lion"].status == "loaded" and len(failed) == 1 and failed[0].status == "failed"
    assert "another plugin named 'lion' is loaded" in (failed[0].error or "")
    assert optiplug.get_registry().optimizers.get("lion")


def test_block_by_environment_variable(fake_distribution, monkeypatch):
    fake_distribution("optiplug-broken", {"broken": "broken_plugin"}, {"broken_plugin": "raise RuntimeError('boom')\n"})
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "broken, cyclic")
    optiplug.plugin_system.host.reset()
    statuses = {r.name: r.status for r in optiplug.get_registry().plugins}
    assert statuses["broken"] == "blocked"
    assert statuses["cyclic"] == "blocked"
    assert statuses["torch"] == "loaded"


def test_block_by_argument():
    pm = make_plugin_manager(blocked=["torch"])
    registry = Registry(pm)
    assert "sgd" not in registry.optimizers
    with pytest.raises(optiplug.ConfigError, match="unknown optimizer 'sgd'"):
        registry.optimizers.get("sgd", "optimizer.name")


def test_plugins_given_directly_without_entry_points():
    import optiplug.engine.core_plugin as core_plugin

    registry = Registry(make_plugin_manager(load_entrypoints=False, plugins=[("core", core_plugin)]))
    assert registry.schedules.names() == ["composite"]
    assert "sgd" not in registry.optimizers
