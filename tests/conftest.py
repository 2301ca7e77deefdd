"""Shared fixtures: small models with the layer kinds rules care about."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug.plugin_system.host
from optiplug.plugin_system.host import PluginHost, current_host, use_host

# Test tensors are tiny: one thread is faster than two fighting over the shared cores,
# and results do not depend on the machine's core count.
torch.set_num_threads(1)


class ConvBnHead(nn.Module):
    """conv1 + bn1 (a trunk) and a linear head, the spec's checked example shape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture
def conv_bn_head() -> ConvBnHead:
    torch.manual_seed(0)
    return ConvBnHead()


@pytest.fixture
def batch() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 3, 6, 6)


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test runs with a fresh plugin host (the registrations made at import kept), and leaves none behind."""
    host = PluginHost(user=current_host().user.copy())
    with use_host(host):
        yield host


def write_distribution(
    root, name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0"
) -> None:
    """A fake installed distribution under ``root``: a ``*.dist-info`` plus its modules."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[optiplug]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install fake distributions on a temporary sys.path: ``fake_distribution(name, entry_points, modules)``."""
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> None:
        write_distribution(tmp_path, name, entry_points, modules, version)
        created.extend(modules)
        optiplug.plugin_system.host.reset()

    yield make
    for module in created:
        sys.modules.pop(module, None)
