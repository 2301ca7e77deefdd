"""Fixtures for the VISSL dialect tests: a trunk + head model and per-update value readers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "vissl"


class Prototypes(nn.Module):
    """A head module that is neither Linear/Conv nor a norm layer: VISSL calls its parameters 'remaining'."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 8))


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.norm = nn.LayerNorm(8)
        self.prototypes = Prototypes()


class Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.ln = nn.LayerNorm(4)
        self.attn = nn.MultiheadAttention(4, 2)
        self.gn = nn.GroupNorm(2, 4)
        self.embed = nn.Embedding(5, 4)


class TrunkHead(nn.Module):
    """Every kind of parameter VISSL's default constructor tells apart."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = Trunk()
        self.class_token = nn.Parameter(torch.zeros(1, 4))
        self.heads = nn.ModuleList([Head()])


@pytest.fixture
def trunk_head() -> TrunkHead:
    torch.manual_seed(0)
    return TrunkHead()


@pytest.fixture
def small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


@pytest.fixture
def per_update() -> Callable[..., list[list[float]]]:
    """``per_update(built, option, updates)``: the option of every group before each update."""

    def read(built, option: str = "lr", updates: int | None = None) -> list[list[float]]:
        total = int(built.clock.total_steps) if updates is None else updates
        rows = []
        for _ in range(total):
            rows.append([float(group[option]) for group in built.optimizer.param_groups])
            built.optimizer.step()
            built.scheduler.step()
        return [list(column) for column in zip(*rows, strict=True)]

    return read


def vissl_loop(scheduler: Callable[[float], float], interval: str, epochs: int, per_epoch: int) -> list[float]:
    """What VISSL's loop uses at each update (spec 3.5): step schedules at k/T, epoch ones at e/E."""
    total = epochs * per_epoch
    if interval == "step":
        return [scheduler(k / total) for k in range(total)]
    return [scheduler((k // per_epoch) / epochs) for k in range(total)]


@pytest.fixture
def loop() -> Callable[..., list[float]]:
    """The VISSL loop reference as a fixture (test modules cannot import each other)."""
    return vissl_loop


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
