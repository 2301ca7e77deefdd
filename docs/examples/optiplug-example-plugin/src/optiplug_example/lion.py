"""The Lion optimizer (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

For each parameter ``p`` with gradient ``g`` and momentum ``m`` (zero at first)::

    c = beta1 * m + (1 - beta1) * g          # interpolate momentum and gradient
    p = p * (1 - lr * weight_decay)          # decoupled weight decay, as AdamW
    p = p - lr * sign(c)                     # every element moves by exactly lr
    m = beta2 * m + (1 - beta2) * g          # the momentum, with its own beta

The paper's defaults: ``betas=(0.9, 0.99)``; an lr 3-10x smaller than AdamW's and a weight
decay 3-10x larger, since the sign update has a larger norm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optiplug.plugin import ConfigError


class Lion(torch.optim.Optimizer):
    """Lion: the sign of an interpolation of momentum and gradient, with decoupled weight decay.

    >>> optimizer = Lion(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if not lr >= 0.0:
            raise ConfigError(f"must be >= 0, got {lr!r}", "lr")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ConfigError(f"must be in [0, 1), got {beta!r}", f"betas[{i}]")
        if not weight_decay >= 0.0:
            raise ConfigError(f"must be >= 0, got {weight_decay!r}", "weight_decay")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Lion update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, weight_decay = group["lr"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, param.grad, lr, weight_decay, beta1, beta2)
        return loss

    def _update(
        self, param: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float, beta1: float, beta2: float
    ) -> None:
        state = self.state[param]
        if not state:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        momentum = state["exp_avg"]
        direction = momentum.mul(beta1).add_(grad, alpha=1 - beta1).sign_()
        param.mul_(1 - lr * weight_decay)
        param.add_(direction, alpha=-lr)
        momentum.mul_(beta2).add_(grad, alpha=1 - beta2)
