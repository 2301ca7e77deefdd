"""Which plugin provides MMCV's policies: optiplug_mmcv, all of them, whatever else is blocked.

The dialect owns its policies (Cyclic, OneCycle and CosineRestart included); the
algorithm plugins ``optiplug_cyclic`` and ``optiplug_restarts`` know nothing of MMCV, so
blocking one of them leaves MMCV configs working, and blocking ``mmcv`` leaves no
``mmcv_*`` schedule behind.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import optiplug
from optiplug.cli import main
from optiplug.plugin_system.host import PluginHost, use_host

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
MMCV_SCHEDULES = {
    "mmcv_cyclic",
    "mmcv_one_cycle",
    "mmcv_cosine_restart",
    "mmcv_momentum_cyclic",
    "mmcv_momentum_one_cycle",
    "mmcv_cosine_annealing",
    "mmcv_momentum_step",
}
CONFIGS = {
    "cyclic": dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        lr_config=dict(policy="Cyclic", target_ratio=(10, 1e-4), cyclic_times=2, by_epoch=False),
        momentum_config=dict(policy="Cyclic", target_ratio=(0.85 / 0.95, 1), cyclic_times=2, by_epoch=False),
        runner=dict(type="IterBasedRunner", max_iters=12),
    ),
    "one_cycle": dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        lr_config=dict(policy="OneCycle", max_lr=0.5, by_epoch=False),
        momentum_config=dict(policy="OneCycle", by_epoch=False),
        runner=dict(type="IterBasedRunner", max_iters=12),
    ),
    "cosine_restart": dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        lr_config=dict(policy="CosineRestart", periods=[4, 8], restart_weights=[1, 0.5], min_lr=0, by_epoch=False),
        runner=dict(type="IterBasedRunner", max_iters=12),
    ),
}


def trajectory(config: dict) -> list[tuple[float, float]]:
    """(lr, momentum) before each of the run's 12 iterations."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    built = optiplug.build(config, model)
    values = []
    for i in range(12):
        group = built.optimizer.param_groups[0]
        values.append((group["lr"], group["momentum"]))
        built.scheduler.set_step(i + 1)
    return values


def plugin_rows(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    assert main(["plugins", "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def provided_names(row: dict) -> set[str]:
    return {name for names in row["provides"].values() for name in names}


def test_the_mmcv_plugin_provides_every_mmcv_policy(capsys):
    with use_host(PluginHost()):
        rows = plugin_rows(capsys)
    assert MMCV_SCHEDULES <= provided_names(rows["mmcv"])
    for algorithm in ("cyclic", "restarts"):
        assert not {name for name in provided_names(rows[algorithm]) if name.startswith("mmcv")}


def test_blocking_mmcv_leaves_no_mmcv_schedule(capsys, monkeypatch):
    monkeypatch.setenv("OPTIPLUG_DISABLE_PLUGINS", "mmcv")
    with use_host(PluginHost()):
        rows = plugin_rows(capsys)
        assert not any(name.startswith("mmcv_") for name in optiplug.get_registry().schedules.names())
    assert (rows["mmcv"]["status"], rows["mmcv"]["provides"]) == ("blocked", {})
    assert not [name for row in rows.values() for name in provided_names(row) if name.startswith("mmcv")]
    assert rows["cyclic"]["status"] == rows["restarts"]["status"] == "loaded"


@pytest.mark.parametrize("blocked", ["cyclic", "restarts"])
@pytest.mark.parametrize("policy", sorted(CONFIGS))
def test_mmcv_configs_build_with_an_algorithm_plugin_blocked(blocked, policy):
    expected = trajectory(CONFIGS[policy])
    assert len({lr for lr, _ in expected}) > 2
    with use_host(PluginHost(blocked=[blocked])):
        registry = optiplug.get_registry()
        assert {p.name: p.status for p in registry.plugins}[blocked] == "blocked"
        assert f"mmcv_{policy}" in registry.schedules
        assert trajectory(CONFIGS[policy]) == expected


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["optiplug_cyclic", "optiplug_restarts"])
def test_the_algorithm_plugins_import_nothing_from_mmcv(package):
    files = sorted((PLUGINS / package).rglob("*.py"))
    assert files
    offending = {
        f"{path.relative_to(PLUGINS)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module == "optiplug_mmcv" or module.startswith("optiplug_mmcv.")
    }
    assert not offending
    assert not [path.name for path in files if "mmcv" in path.name]
