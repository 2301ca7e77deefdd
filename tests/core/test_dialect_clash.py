"""Two plugins providing a dialect of one name: a clash whether the config names the dialect or it is detected.

Naming the dialect (``dialect=``) looks the name up in the registry, which refuses a
name several plugins provide. Detection asks the dialects themselves; before, it asked
only the first plugin's and silently translated with it (or, when only the second
plugin's detected the config, read it as a canonical recipe). Both now fail with the
registry's clash message: both plugins, both distributions, the ``OPTIPLUG_DISABLE_PLUGINS``
value that keeps each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch

import optiplug
from optiplug import DialectContext, DialectSpec, OptimizerConfig, Recipe
from optiplug.cli import main
from optiplug.plugin_system.catalogues import ClashError
from optiplug.plugin_system.host import PluginHost, use_host


class ToyDialect:
    """A plugin providing the ``toy`` dialect: ``toy_lr: 0.1`` reads as SGD at that lr."""

    def __init__(self, lr_scale: float, detects: bool = True, priority: int = 0) -> None:
        self.lr_scale = lr_scale
        self.detects = detects
        self.priority = priority

    def detect(self, mapping: Mapping[str, Any]) -> bool:
        return self.detects and "toy_lr" in mapping

    def translate(self, mapping: Mapping[str, Any], context: DialectContext) -> Recipe:
        return Recipe(optimizer=OptimizerConfig("sgd", {"lr": mapping["toy_lr"] * self.lr_scale}))

    @optiplug.hookimpl
    def optiplug_dialects(self) -> list[DialectSpec]:
        return [DialectSpec("toy", self.detect, self.translate, "toy configs", priority=self.priority)]


def host(first: ToyDialect, second: ToyDialect | None = None, blocked: tuple[str, ...] = ()) -> PluginHost:
    plugins: list[tuple[str, Any, str]] = [("toyone", first, "optiplug-toy-one")]
    if second is not None:
        plugins.append(("toytwo", second, "optiplug-toy-two"))
    return PluginHost(load_entrypoints=True, plugins=plugins, blocked=blocked)


CONFIG = {"toy_lr": 0.1}
BOTH = (
    "config dialect 'toy' is provided twice: by plugin 'toyone' (optiplug-toy-one) and by plugin 'toytwo' "
    "(optiplug-toy-two); to use it, block all but one: OPTIPLUG_DISABLE_PLUGINS=toytwo keeps plugin 'toyone', "
    "OPTIPLUG_DISABLE_PLUGINS=toyone keeps plugin 'toytwo'"
)


@pytest.fixture(autouse=True)
def _no_blocked_plugins(monkeypatch):
    monkeypatch.delenv("OPTIPLUG_DISABLE_PLUGINS", raising=False)


def test_one_toy_dialect_is_detected_and_translated():
    with use_host(host(ToyDialect(lr_scale=2.0))):
        built = optiplug.build(CONFIG, torch.nn.Linear(2, 1))
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)


def test_naming_a_clashing_dialect_fails_naming_both_plugins():
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0))):
        assert [(c.kind, c.name) for c in optiplug.get_registry().clashes()] == [("config dialect", "toy")]
        with pytest.raises(ClashError) as info:
            optiplug.build(CONFIG, torch.nn.Linear(2, 1), dialect="toy")
    assert str(info.value) == f"dialect: {BOTH}"


def test_detecting_a_clashing_dialect_fails_in_the_same_terms():
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0))):
        with pytest.raises(ClashError) as info:
            optiplug.build(CONFIG, torch.nn.Linear(2, 1))
    assert str(info.value) == f"this config reads as the toy dialect (detected): {BOTH}"
    assert isinstance(info.value, optiplug.PluginError) and isinstance(info.value, optiplug.ConfigError)


def test_only_the_second_plugin_detecting_is_a_clash_too():
    """Before, only the first plugin's ``detect`` was asked: the config was read as a canonical recipe."""
    with use_host(host(ToyDialect(2.0, detects=False), ToyDialect(3.0))):
        match = r"reads as the toy dialect \(detected\): config dialect 'toy' is provided twice"
        with pytest.raises(ClashError, match=match):
            optiplug.to_recipe(CONFIG)


def test_a_higher_priority_clashing_dialect_is_not_hidden_behind_the_first():
    with use_host(host(ToyDialect(2.0, priority=-5), ToyDialect(3.0, priority=50))):
        with pytest.raises(ClashError, match="provided twice"):
            optiplug.to_recipe(CONFIG)


def test_configs_no_toy_dialect_detects_still_build():
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0))):
        built = optiplug.build({"optimizer": {"name": "sgd", "lr": 0.5}}, torch.nn.Linear(2, 1))
        assert built.optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(("blocked", "lr"), [("toytwo", 0.2), ("toyone", 0.3)])
def test_blocking_one_plugin_resolves_the_clash(blocked, lr):
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0), blocked=(blocked,))):
        assert optiplug.get_registry().clashes() == []
        built = optiplug.build(CONFIG, torch.nn.Linear(2, 1))
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(lr)


def test_naming_another_dialect_describes_the_config_without_the_clash():
    """``dialect='vissl'`` on a toy config: the mismatch is reported, as before; the clash does not hide it."""
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0))):
        with pytest.raises(optiplug.ConfigError, match="it reads as the toy dialect"):
            optiplug.build(CONFIG, torch.nn.Linear(2, 1), dialect="vissl")


def test_check_on_the_command_line_prints_the_clash_on_one_line(tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text("toy_lr: 0.1\n")
    with use_host(host(ToyDialect(2.0), ToyDialect(3.0))):
        assert main(["check", str(config)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0] == f"optiplug: error: this config reads as the toy dialect (detected): {BOTH}"
