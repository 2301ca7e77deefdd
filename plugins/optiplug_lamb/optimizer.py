"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning"), the NVLAMB variant of timm.

The update MMClassification 0.x and mmpretrain ship (their ``Lamb`` is timm's). Per step,
over every parameter with a gradient in every group:

    n = sqrt(sum over all grads of ||g||^2)                 the global grad norm
    g = g / (n / max_grad_norm) if n > max_grad_norm else g  (max_grad_norm: the constructor's)

then per group, with t the group's step count (``group['step']``) and per parameter:

    m = beta1 * m + beta3 * g           beta3 = 1 - beta1 (grad_averaging) or 1
    v = beta2 * v + (1 - beta2) * g * g
    u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)   bc_i = 1 - beta_i ** t (bias_correction) or 1
    u = u + weight_decay * p
    if weight_decay != 0 or always_adapt:
        r = ||p|| / ||u|| if ||p|| > 0 and ||u|| > 0 else 1
        r = min(r, 1) if trust_clip
        u = r * u
    p = p - lr * u

Unlike timm, the gradients themselves are left as they were (timm divides ``p.grad`` in place
by the clipping factor); the parameters and the state move identically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optiplug import ConfigError


def _check_options(options: dict[str, Any]) -> None:
    """Raise a ConfigError (a ValueError) naming the first bad option."""
    for name in ("lr", "eps", "weight_decay"):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0.0:
            raise ConfigError(f"must be a number >= 0, got {value!r}", name)
    betas = options["betas"]
    if (
        not isinstance(betas, (tuple, list))
        or len(betas) != 2
        or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas)
    ):
        raise ConfigError(f"must be two numbers, each in [0, 1), got {betas!r}", "betas")
    for name in ("bias_correction", "grad_averaging", "trust_clip", "always_adapt"):
        if not isinstance(options[name], bool):
            raise ConfigError(f"must be true or false, got {options[name]!r}", name)


class Lamb(Optimizer):
    """LAMB: timm's / MMClassification's ``Lamb`` (NVLAMB, with global grad-norm clipping).

    ``Lamb(params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-6,
    weight_decay=0.01, grad_averaging=True, max_grad_norm=1.0, trust_clip=False,
    always_adapt=False)``. ``max_grad_norm`` clips the norm of all gradients together
    (``None``: no clipping); it is the constructor's value, shared by all groups.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        bias_correction: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        grad_averaging: bool = True,
        max_grad_norm: float | None = 1.0,
        trust_clip: bool = False,
        always_adapt: bool = False,
    ) -> None:
        if max_grad_norm is not None and (
            isinstance(max_grad_norm, bool)
            or not isinstance(max_grad_norm, (int, float))
            or not 0.0 < max_grad_norm < math.inf
        ):
            raise ConfigError(f"must be a number > 0 (or null: no clipping), got {max_grad_norm!r}", "max_grad_norm")
        defaults = {
            "lr": lr,
            "bias_correction": bias_correction,
            "betas": tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "grad_averaging": grad_averaging,
            "max_grad_norm": max_grad_norm,
            "trust_clip": trust_clip,
            "always_adapt": always_adapt,
        }
        _check_options(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (checked like the constructor's arguments)."""
        super().add_param_group(param_group)
        _check_options(self.param_groups[-1])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads_of = [self._grads(group) for group in self.param_groups]
        every = [g for pairs in grads_of for _, g in pairs]
        clip = self._clip_factor(every) if every else None
        for group, pairs in zip(self.param_groups, grads_of, strict=True):
            _check_options(group)
            group["step"] = group.get("step", 0) + 1
            if pairs:
                self._update(group, pairs, clip)
        return loss

    @staticmethod
    def _grads(group: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pairs = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Lamb does not support sparse gradients, consider SparseAdam instead.")
            if torch.is_complex(p):
                raise RuntimeError("Lamb does not support complex parameters")
            pairs.append((p, p.grad))
        return pairs

    def _clip_factor(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """The clipping divisor (a tensor): the global grad norm / max_grad_norm where it exceeds it, else 1."""
        device = grads[0].device
        dtype = torch.promote_types(torch.float32, grads[0].dtype)
        for g in grads[1:]:
            dtype = torch.promote_types(dtype, g.dtype)
        norms = torch._foreach_norm(grads)
        total = torch.linalg.vector_norm(torch.stack([n.to(device=device, dtype=dtype) for n in norms]))
        limit = self.defaults["max_grad_norm"]
        one = torch.ones((), device=device, dtype=dtype)
        if limit is None:
            return one
        return torch.where(total > limit, total / limit, one)

    def _update(
        self, group: dict[str, Any], pairs: list[tuple[torch.Tensor, torch.Tensor]], clip: torch.Tensor | None
    ) -> None:
        beta1, beta2 = group["betas"]
        beta3 = 1 - beta1 if group["grad_averaging"] else 1.0
        t = group["step"]
        bc1, bc2 = (1 - beta1**t, 1 - beta2**t) if group["bias_correction"] else (1.0, 1.0)
        weight_decay = group["weight_decay"]
        adapt = weight_decay != 0 or group["always_adapt"]
        by_kind: dict[tuple[torch.device, torch.dtype], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p, g in pairs:
            by_kind.setdefault((p.device, p.dtype), []).append((p, g))
        for (device, _), members in by_kind.items():
            params = [p for p, _ in members]
            grads = [g for _, g in members]
            if clip is not None:
                grads = list(torch._foreach_div(grads, clip.to(device)))
            exp_avgs, exp_avg_sqs = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_add_(exp_avgs, grads, alpha=beta3)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
            denoms = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denoms, math.sqrt(bc2))
            torch._foreach_add_(denoms, group["eps"])
            updates = torch._foreach_div(exp_avgs, bc1)
            torch._foreach_div_(updates, denoms)
            if weight_decay != 0:
                torch._foreach_add_(updates, params, alpha=weight_decay)
            if adapt:
                w_norms = torch.stack(torch._foreach_norm(params))
                u_norms = torch.stack(torch._foreach_norm(updates))
                one = torch.ones((), device=device, dtype=w_norms.dtype)
                ratios = torch.where((w_norms > 0) & (u_norms > 0), w_norms / u_norms, one)
                if group["trust_clip"]:
                    ratios = torch.minimum(ratios, one)
                torch._foreach_mul_(updates, list(ratios.unbind()))
            torch._foreach_add_(params, updates, alpha=-group["lr"])
