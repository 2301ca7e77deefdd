"""The example third-party plugin (docs/examples/optiplug-example-plugin): pip-installed, found, used, removed.

It is installed by pip into a directory of this test's own (``--target``) put on
``sys.path``: the same wheel and the same entry point a user gets, without touching the
environment other tests (and other people's test runs) share; ``uninstall`` is deleting
the directory. A subprocess with that directory on PYTHONPATH shows the command sees it.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import optiplug
import optiplug.plugin_system.host
from optiplug.cli import main
from optiplug.tooling.curves import compute_curves

PACKAGE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "optiplug-example-plugin"
MODULES = ("optiplug_example", "optiplug_example.lion", "optiplug_example.wsd")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package built and installed by pip into a fresh directory; its path."""
    setuptools = pytest.importorskip("setuptools", reason="building the example package needs setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"the example package's pyproject needs setuptools >= 77, found {setuptools.__version__}")
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--quiet", "--disable-pip-version-check", "--target", str(target), str(PACKAGE)]
    subprocess.run(command, check=True, cwd=build, env=os.environ | {"PIP_NO_CACHE_DIR": "1"})
    yield target


@pytest.fixture
def plugin(installed, monkeypatch):
    """The installed plugin on sys.path for one test; afterwards gone from sys.path, sys.modules and the registry."""
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    optiplug.plugin_system.host.reset()
    yield installed
    for module in MODULES:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    importlib.invalidate_caches()
    optiplug.plugin_system.host.reset()


def test_pip_installed_it_as_a_distribution_with_the_entry_point(installed):
    infos = list(installed.glob("optiplug_example_plugin-0.1.0.dist-info"))
    assert len(infos) == 1
    assert "[optiplug]\nexample = optiplug_example" in (infos[0] / "entry_points.txt").read_text()
    assert (installed / "optiplug_example" / "py.typed").exists()


def test_optiplug_plugins_lists_it(plugin, capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["example"] == {
        "name": "example",
        "distribution": "optiplug-example-plugin",
        "version": "0.1.0",
        "status": "loaded",
        "provides": {"optimizers": ["lion"], "schedules": ["trapezoid"], "scaling_rules": ["trapezoid"]},
        "error": None,
        "clashes": [],
    }


def test_the_command_in_a_new_process_lists_it(plugin):
    environment = os.environ | {"PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "optiplug", "plugins", "--json"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    names = {row["name"]: row["distribution"] for row in json.loads(result.stdout)}
    assert names["example"] == "optiplug-example-plugin"


RECIPE = {
    "optimizer": {"name": "lion", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.5},
    "rules": [{"kind": "bias", "set": {"weight_decay": 0}}],
    "schedules": {
        "lr": {
            "name": "trapezoid",
            "peak_value": 0.01,
            "warmup_fraction": 0.25,
            "decay_fraction": 0.5,
            "decay_shape": "cosine",
            "start_value": 0.002,
        },
    },
    "run": {"num_epochs": 2, "steps_per_epoch": 4},
}


def wsd(step: int, total: int = 8) -> float:
    """The wsd formula of the recipe above, written out: warmup 2 updates, stable 2, cosine decay 4."""
    w = step / total
    if w < 0.25:
        return 0.002 + (0.01 - 0.002) * w / 0.25
    if w < 0.5:
        return 0.01
    s = (w - 0.5) / 0.5
    return 0.01 + (0.0 - 0.01) * (1 - math.cos(math.pi * s)) / 2


def test_a_recipe_uses_its_optimizer_and_its_schedule(plugin):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    built = optiplug.build(RECIPE, model)
    assert type(built.optimizer).__module__ == "optiplug_example.lion"
    lrs = compute_curves(built).values["lr"]
    for group in lrs.tolist():  # the bias group's lr too: only its weight decay differs
        assert group == pytest.approx([wsd(k) for k in range(8)], rel=1e-12, abs=1e-15)

    # three updates, each checked against Lion's rule written here (momentum starts at 0)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    m_weight, m_bias = torch.zeros_like(weight), torch.zeros_like(bias)
    inputs = torch.randn(4, 3)
    for step in range(3):
        loss = model(inputs).pow(2).sum()
        g_weight, g_bias = torch.autograd.grad(loss, [model.weight, model.bias])
        lr = wsd(step)
        weight = weight * (1 - lr * 0.5) - lr * torch.sign(0.9 * m_weight + 0.1 * g_weight)
        bias = bias - lr * torch.sign(0.9 * m_bias + 0.1 * g_bias)  # no weight decay on biases
        m_weight, m_bias = 0.99 * m_weight + 0.01 * g_weight, 0.99 * m_bias + 0.01 * g_bias
        built.step(model(inputs).pow(2).sum())
        torch.testing.assert_close(model.weight.detach(), weight, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(model.bias.detach(), bias, rtol=1e-6, atol=1e-7)


def test_lr_scaling_uses_its_scaling_rule(plugin):
    recipe = RECIPE | {"lr_scaling": {"base_batch_size": 64}, "run": RECIPE["run"] | {"batch_size_per_device": 128}}
    built = optiplug.build(recipe, nn.Linear(3, 2))
    lrs = compute_curves(built).values["lr"][0]
    assert lrs.tolist() == pytest.approx([2 * wsd(k) for k in range(8)], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decay_shape": "cosin"}, r"schedules\.lr\.decay_shape: must be one of .* \(did you mean 'cosine'\?\)"),
        ({"warmup_fraction": 0.6}, r"schedules\.lr\.decay_fraction: warmup_fraction \+ decay_fraction must be <= 1"),
        ({"peak": 0.1}, r"schedules\.lr\.peak: unknown key; accepted: decay_fraction, decay_shape, end_value"),
    ],
)
def test_its_schedule_errors_name_the_path(plugin, change, message):
    schedule = RECIPE["schedules"]["lr"] | change
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.build(RECIPE | {"schedules": {"lr": schedule}}, nn.Linear(3, 2))


def test_its_optimizer_errors_name_the_argument(plugin):
    recipe = RECIPE | {"optimizer": RECIPE["optimizer"] | {"betas": [0.9, 1.5]}}
    with pytest.raises(optiplug.ConfigError, match=r"^optimizer\.betas\[1\]: must be in \[0, 1\), got 1\.5$"):
        optiplug.build(recipe, nn.Linear(3, 2))


def test_without_it_the_names_are_unknown(installed):
    """Uninstalled (off sys.path), nothing of it remains: other tests see the usual registry."""
    assert "optiplug_example" not in sys.modules
    assert "example" not in {p.name for p in optiplug.get_registry().plugins}
    with pytest.raises(optiplug.ConfigError, match="unknown optimizer 'lion'"):
        optiplug.build({"optimizer": {"name": "lion"}}, nn.Linear(3, 2))
