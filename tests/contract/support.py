"""Shared pieces of the contract suite (``from contract.support import ...``): tiny models, batches, checkpoints.

The contract tests are parametrized by the names a fresh plugin host finds through the
``optiplug`` entry points at collection time, so an installed plugin is covered without
editing them (registrations made by user code in other tests are not part of it).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from optiplug.plugin_system.host import PluginHost

STEPS_PER_EPOCH = 3
NUM_EPOCHS = 4
VOCABULARY = 12
CLASSES = 3


def entry_point_names(catalogue: str) -> list[str]:
    """The names of one catalogue (``optimizers``, ``schedules``, ...) as the installed plugins provide them."""
    return getattr(PluginHost().registry, catalogue).names()


class Block(nn.Module):
    """A pre-activation residual block: batch norm, then a 1-d convolution (whose bias gets a gradient)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(torch.relu(self.bn(x)))


class ContractNet(nn.Module):
    """Embedding, conv + batch-norm blocks, a layer norm and a linear head, named as the rule presets expect.

    ``blocks.<k>.`` is what the layer-decay presets count, ``heads.<i>`` what VISSL's head
    constructors look for.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, 4)
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.norm = nn.LayerNorm(4)
        self.heads = nn.ModuleList([nn.Linear(4, CLASSES)])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.heads[0](self.norm(x.mean(dim=2)))

    @staticmethod
    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1000 + step)
        return torch.randint(0, VOCABULARY, (4, 5), generator=g), torch.randint(0, CLASSES, (4,), generator=g)


class MatrixNet(nn.Module):
    """Two bias-free linear layers: every parameter is a matrix (for optimizers that take only those)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(6, 8, bias=False)
        self.out = nn.Linear(8, CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))

    @staticmethod
    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1000 + step)
        return torch.randn(4, 6, generator=g), torch.randint(0, CLASSES, (4,), generator=g)


class SparseNet(nn.Module):
    """Two embeddings with sparse gradients (for optimizers that take only those)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, CLASSES, sparse=True)
        self.bias = nn.Embedding(VOCABULARY, CLASSES, sparse=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return (self.embed(tokens) + self.bias(tokens)).mean(dim=1)

    batch = staticmethod(ContractNet.batch)


def make_model(cls: type[nn.Module] = ContractNet, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls()


def loss_at(model: nn.Module, step: int) -> torch.Tensor:
    inputs, targets = model.batch(step)  # type: ignore[operator]
    return F.cross_entropy(model(inputs), targets)


def train(built: Any, model: nn.Module, steps: Iterable[int]) -> None:
    """One ``built.step`` per step index, each with that index's batch; every one must update."""
    for step in steps:
        assert built.step(loss_at(model, step)), f"update {step} was skipped"


def through_torch_save(state: Any) -> Any:
    """``state`` after ``torch.save`` and ``torch.load(weights_only=True)``, as a checkpoint goes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Equal nested states, tensors bit for bit (dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b) if not a.is_sparse else torch.equal(a.to_dense(), b.to_dense()), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (
            f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        )
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def group_options(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
