"""Models, parameter shapes and rules the benchmarks share.

``resnet50_shapes`` lists torchvision ResNet-50's parameter shapes; ``ResNet50`` is the
same network as modules, with torchvision's parameter names (``conv1``, ``bn1``,
``layer1.0.downsample.1``, ``fc``), so that name and module-type rules see what they
would see on the real model. torchvision is not needed.
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_RULES = [
    {"kind": "norm", "set": {"weight_decay": 0}},
    {"kind": "bias", "set": {"weight_decay": 0}},
    {"kind": "module_path", "prefix": "head", "set": {"lr_mult": 10}},
]
"""No weight decay on norms and biases, 10x lr on the module ``head``: ResNet-50's usual four groups."""

STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))
"""(planes, blocks) of ResNet-50's four stages."""


def resnet50_shapes() -> list[tuple[int, ...]]:
    """torchvision ResNet-50's parameter shapes in order (161 tensors, 25,557,032 elements)."""
    return [tuple(p.shape) for p in ResNet50(meta=True).parameters()]


class Bottleneck(nn.Module):
    """torchvision's Bottleneck: 1x1, 3x3, 1x1 convolutions, each followed by a BatchNorm."""

    def __init__(self, inplanes: int, planes: int, downsample: bool, device: str | None) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False, device=device)
        self.bn1 = nn.BatchNorm2d(planes, device=device)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False, device=device)
        self.bn2 = nn.BatchNorm2d(planes, device=device)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False, device=device)
        self.bn3 = nn.BatchNorm2d(out, device=device)
        if downsample:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, bias=False, device=device), nn.BatchNorm2d(out, device=device)
            )


class ResNet50(nn.Module):
    """ResNet-50's parameters under torchvision's names (no forward: the benchmarks only step).

    ``meta=True`` allocates nothing (shapes only); ``head`` names the classifier (torchvision:
    ``fc``; VISSL recognises heads by the word ``head``).
    """

    def __init__(self, meta: bool = False, head: str = "fc") -> None:
        super().__init__()
        device = "meta" if meta else None
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False, device=device)
        self.bn1 = nn.BatchNorm2d(64, device=device)
        inplanes = 64
        for index, (planes, blocks) in enumerate(STAGES, start=1):
            layer = []
            for block in range(blocks):
                layer.append(Bottleneck(inplanes, planes, block == 0, device))
                inplanes = planes * 4
            setattr(self, f"layer{index}", nn.Sequential(*layer))
        setattr(self, head, nn.Linear(2048, 1000, device=device))


def with_grads(model: nn.Module, seed: int = 0, scale: float = 1.0) -> nn.Module:
    """``model`` with random weights and gradients (seeded), so that steps do real arithmetic."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
            p.grad = torch.randn(p.shape, generator=generator) * scale
    return model
