"""optimizer=dict(type='CustomizedOptim', ...): a user's optimizer, by decorator or from a plugin package."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch.optim.optimizer import Optimizer

import optiplug
from optiplug import ConfigError

CONFIG = dict(optimizer=dict(type="CustomizedOptim", lr=0.5, scale=2.0))


class HalfStep(Optimizer):
    """p <- p - lr * scale * grad / 2 (something torch does not ship, to recognise it)."""

    def __init__(self, params, lr=0.1, scale=1.0):
        super().__init__(params, dict(lr=lr, scale=scale))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"] * group["scale"] / 2)


def check_built(model, config=CONFIG, step=0.5 * 2.0 / 2):
    """Build ``config`` and check that one update moves the weight by ``step`` (its gradient is 1)."""
    built = optiplug.build(config, model)
    before = model.weight.detach().clone()
    built.step(model(torch.ones(1, 3)).sum())
    torch.testing.assert_close(model.weight.detach(), before - step)
    return built


def test_decorated_in_the_users_module(linear_model):
    @optiplug.register_optimizer()
    class CustomizedOptim(HalfStep):
        """The seed's CustomizedOptim."""

    built = check_built(linear_model)
    assert type(built.optimizer) is CustomizedOptim


def test_unknown_until_registered(linear_model):
    with pytest.raises(ConfigError, match="unknown optimizer 'CustomizedOptim'") as caught:
        optiplug.build(CONFIG, linear_model)
    assert caught.value.path == "optimizer.type"


def test_from_a_plugin_package(tmp_path, monkeypatch, linear_model):
    """A distribution on sys.path declaring the plugin in the optiplug entry-point group."""
    module = "fake_mmcv_optims"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import optiplug
            from torch.optim import SGD


            class CustomizedOptim(SGD):
                "Plain SGD under the seed's name, shipped by a plugin package."


            @optiplug.hookimpl
            def optiplug_optimizers():
                return [optiplug.OptimizerSpec(name="CustomizedOptim", factory=CustomizedOptim)]
            """
        )
    )
    info = tmp_path / "fake_mmcv_optims-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-mmcv-optims\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[optiplug]\nfake_optims = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    optiplug.plugin_system.host.reset()
    try:
        built = check_built(linear_model, dict(optimizer=dict(type="CustomizedOptim", lr=0.25)), 0.25)
        provided = optiplug.get_registry().optimizers.provided("CustomizedOptim")
        assert (provided.plugin, provided.distribution) == ("fake_optims", "fake-mmcv-optims")
        assert type(built.optimizer).__module__ == module
    finally:
        sys.modules.pop(module, None)
