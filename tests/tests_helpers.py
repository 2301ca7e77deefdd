"""Small models shared by tests (importable as ``tests_helpers``)."""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """A residual block's parameters (conv, bn, optional downsample)."""

    def __init__(self, channels: int, downsample: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.downsample = (
            nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
            if downsample
            else None
        )

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        return (self.downsample(x) if self.downsample is not None else x) + out.relu()


class ResNetLike(nn.Module):
    """A stem, two stages of residual blocks, and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(Block(8, downsample=True), Block(8))
        self.layer2 = nn.Sequential(Block(8, downsample=True), Block(8))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.bn1(self.conv1(x)).relu()))
        return self.head(x.mean(dim=(2, 3)))


def resnet_like() -> ResNetLike:
    """A fresh ResNetLike."""
    return ResNetLike()
