"""ClassyVision's ``rmsprop_tf``: RMSProp with epsilon inside the square root, as TensorFlow has it.

Multi-tensor: each group's tensors are updated with ``torch._foreach_*`` kernels, one
batch per device and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optiplug import ConfigError
from optiplug.plugin import join_path

Tensors = list[torch.Tensor]


def _check_group(group: dict[str, Any], path: str) -> None:
    """A ConfigError at ``path.<option>`` for an option out of its range."""
    ranges = {
        "lr": (0.0, math.inf, "finite and >= 0"),
        "alpha": (0.0, 1.0, "in [0, 1)"),
        "momentum": (0.0, 1.0, "in [0, 1)"),
        "weight_decay": (0.0, math.inf, "finite and >= 0"),
    }
    for option, (low, high, text) in ranges.items():
        value = group[option]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < high:
            raise ConfigError(f"must be {text}, got {value!r}", join_path(path, option))
    eps = group["eps"]
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
        message = f"must be a finite number > 0 (it is added under the square root), got {eps!r}"
        raise ConfigError(message, join_path(path, "eps"))
    if not isinstance(group["centered"], bool):
        raise ConfigError(f"expected true or false, got {group['centered']!r}", join_path(path, "centered"))


class RMSpropTF(Optimizer):
    """TensorFlow-style RMSProp: the square root is taken of ``v + eps``, not added ``eps`` after it.

    For each parameter ``p`` with gradient ``g`` (``v``, ``m`` and ``b`` start at 0)::

        g = g + weight_decay p                    # L2 weight decay, in the gradient
        v = alpha v + (1 - alpha) g²
        d = sqrt(v + eps)                         # centered: m = alpha m + (1 - alpha) g; d = sqrt(v - m² + eps)
        b = momentum b + g / d;  p = p - lr b     # momentum > 0 (lr outside the buffer)
        p = p - lr g / d                          # momentum = 0

    This is ClassyVision's ``RMSpropTFOptimizer`` update; ``v`` keeps the running mean
    of squares (ClassyVision's uncentered branch takes the square root in place, so
    its stored ``v`` becomes ``sqrt(v + eps)`` after the first step: not reproduced).

    Example::

        RMSpropTF(model.parameters(), lr=0.016, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-5)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        _check_group(defaults, "")
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (defaults filled in) and check its options."""
        super().add_param_group(param_group)
        _check_group(self.param_groups[-1], f"param_groups[{len(self.param_groups) - 1}]")

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple[torch.device, torch.dtype], Tensors] = {}
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.is_sparse:
                        raise RuntimeError("rmsprop_tf does not support sparse gradients")
                    buckets.setdefault((p.device, p.dtype), []).append(p)
            for params in buckets.values():
                self._update(group, params)
        return loss

    def _update(self, group: dict[str, Any], params: Tensors) -> None:
        alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
        grads: Tensors = [p.grad for p in params]  # type: ignore[misc]
        if group["weight_decay"] != 0:
            grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
        squares = self._buffers(params, "square_avg")
        torch._foreach_mul_(squares, alpha)
        torch._foreach_addcmul_(squares, grads, grads, value=1 - alpha)
        if group["centered"]:
            means = self._buffers(params, "grad_avg")
            torch._foreach_mul_(means, alpha)
            torch._foreach_add_(means, grads, alpha=1 - alpha)
            denominators = torch._foreach_addcmul(squares, means, means, value=-1)
            torch._foreach_add_(denominators, eps)
        else:
            denominators = torch._foreach_add(squares, eps)
        torch._foreach_sqrt_(denominators)
        if group["momentum"] > 0:
            buffers = self._buffers(params, "momentum_buffer")
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_addcdiv_(buffers, grads, denominators)
            torch._foreach_add_(params, buffers, alpha=-lr)
        else:
            torch._foreach_addcdiv_(params, grads, denominators, value=-lr)

    def _buffers(self, params: Tensors, key: str) -> Tensors:
        """Each parameter's ``state[key]``, made as zeros the first time it is needed."""
        buffers = []
        for p in params:
            state = self.state[p]
            if key not in state:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            buffers.append(state[key])
        return buffers
