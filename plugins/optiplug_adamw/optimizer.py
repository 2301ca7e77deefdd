"""AdamW with decoupled weight decay (Loshchilov & Hutter), adamwr's update rule, two conventions.

Per parameter at step t (g the gradient):

    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g          (amsgrad: v_hat = max(v_hat, v), used below)
    step_size = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    p = p * (1 - decay) - step_size * m / (sqrt(v) + eps)

with ``decay = weight_decay`` in the paper's convention (the default, as adamwr: the decay
does not depend on the base lr; a schedule such as ``normalized_decay`` moves it) or
``decay = lr * weight_decay`` in torch's convention (``torch.optim.AdamW``). eps is added
to sqrt(v) before the bias correction is folded into the step size (adamwr; torch adds
it after), whatever the convention.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optiplug import ConfigError
from optiplug.plugin import did_you_mean

CONVENTIONS = ("paper", "torch")


def _checked_group(group: dict[str, Any]) -> None:
    """Raise a ConfigError (a ValueError) naming the first bad option of a param group."""
    for name in ("lr", "eps", "weight_decay"):
        if not group[name] >= 0.0:
            raise ConfigError(f"must be >= 0, got {group[name]!r}", name)
    betas = group["betas"]
    if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
        raise ConfigError(f"must be two numbers, each in [0, 1), got {betas!r}", "betas")
    if group["decay_convention"] not in CONVENTIONS:
        hint = did_you_mean(str(group["decay_convention"]), CONVENTIONS)
        raise ConfigError(f"must be 'paper' or 'torch', got {group['decay_convention']!r}{hint}", "decay_convention")


class AdamW(Optimizer):
    """Adam with decoupled weight decay: adamwr's ``AdamW`` (paper convention) or torch's convention.

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``
    takes adamwr's arguments; ``decay_convention='torch'`` multiplies the decay by lr;
    ``foreach=True`` uses torch's multi-tensor kernels (default: on CUDA tensors).
    Registered in optiplug as ``adamwr`` (torch's ``AdamW`` stays ``adamw``).

    >>> # paper convention, lr 0.1, weight_decay 0.01, zero gradient: 1.0 -> 0.99 in one step
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decay_convention: str = "paper",
        foreach: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "decay_convention": decay_convention,
            "foreach": foreach,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (checked like the constructor's arguments)."""
        super().add_param_group(param_group)
        _checked_group(self.param_groups[-1])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            _checked_group(group)
            batch = self._gather(group)
            if not batch.params:
                continue
            if self._use_foreach(group, batch.params):
                _foreach_update(group, batch)
            else:
                _single_update(group, batch)
        return loss

    @staticmethod
    def _use_foreach(group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        choice = group["foreach"]
        if choice is None:
            return all(p.is_cuda for p in params)
        return bool(choice)

    def _gather(self, group: dict[str, Any]) -> _Batch:
        batch = _Batch()
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("AdamW does not support sparse gradients, please consider SparseAdam instead")
            if torch.is_complex(p):
                raise RuntimeError("AdamW (adamwr) does not support complex parameters; use torch.optim.AdamW")
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            batch.add(p, state, group["amsgrad"])
        return batch


class _Batch:
    """The tensors of one group's update, with each parameter's step count."""

    def __init__(self) -> None:
        self.params: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []
        self.exp_avgs: list[torch.Tensor] = []
        self.exp_avg_sqs: list[torch.Tensor] = []
        self.max_exp_avg_sqs: list[torch.Tensor] = []
        self.steps: list[int] = []

    def add(self, p: torch.Tensor, state: dict[str, Any], amsgrad: bool) -> None:
        self.params.append(p)
        self.grads.append(p.grad)  # type: ignore[arg-type]
        self.exp_avgs.append(state["exp_avg"])
        self.exp_avg_sqs.append(state["exp_avg_sq"])
        if amsgrad:
            self.max_exp_avg_sqs.append(state["max_exp_avg_sq"])
        self.steps.append(int(state["step"]))


def _step_size(group: dict[str, Any], step: int) -> float:
    beta1, beta2 = group["betas"]
    return group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)


def _decay_factor(group: dict[str, Any]) -> float:
    decay = group["weight_decay"]
    return 1 - (group["lr"] * decay if group["decay_convention"] == "torch" else decay)


def _single_update(group: dict[str, Any], batch: _Batch) -> None:
    beta1, beta2 = group["betas"]
    factor = _decay_factor(group)
    for i, p in enumerate(batch.params):
        grad, exp_avg, exp_avg_sq = batch.grads[i], batch.exp_avgs[i], batch.exp_avg_sqs[i]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        second = exp_avg_sq
        if group["amsgrad"]:
            second = torch.maximum(batch.max_exp_avg_sqs[i], exp_avg_sq, out=batch.max_exp_avg_sqs[i])
        denom = second.sqrt().add_(group["eps"])
        if factor != 1:
            p.mul_(factor)
        p.addcdiv_(exp_avg, denom, value=-_step_size(group, batch.steps[i]))


def _foreach_update(group: dict[str, Any], batch: _Batch) -> None:
    """The same update with multi-tensor kernels, per device and dtype."""
    for index in _by_device_and_dtype(batch.params):
        params = [batch.params[i] for i in index]
        grads = [batch.grads[i] for i in index]
        exp_avgs = [batch.exp_avgs[i] for i in index]
        exp_avg_sqs = [batch.exp_avg_sqs[i] for i in index]
        beta1, beta2 = group["betas"]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        second = exp_avg_sqs
        if group["amsgrad"]:
            second = [batch.max_exp_avg_sqs[i] for i in index]
            torch._foreach_maximum_(second, exp_avg_sqs)
        denoms = torch._foreach_sqrt(second)
        torch._foreach_add_(denoms, group["eps"])
        factor = _decay_factor(group)
        if factor != 1:
            torch._foreach_mul_(params, factor)
        sizes = [-_step_size(group, batch.steps[i]) for i in index]
        torch._foreach_addcdiv_(params, exp_avgs, denoms, sizes)


def _by_device_and_dtype(tensors: list[torch.Tensor]) -> list[list[int]]:
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return list(groups.values())
