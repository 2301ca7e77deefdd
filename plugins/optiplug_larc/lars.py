"""MMSelfSup's LARS (``mmselfsup/core/optimizer/optimizers.py::LARS``), multi-tensor and sync-free."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optiplug import ConfigError
from optiplug.plugin import join_path
from optiplug_larc import fused as fused_path
from optiplug_larc.checks import require_bool, require_number
from optiplug_larc.packed_optimizer import PackedOptimizer
from optiplug_larc.packing import Factors, Packed, Part, Scalar, Tensors


def local_lrs(
    param_norms: torch.Tensor,
    grad_norms: torch.Tensor,
    *,
    eta: float,
    weight_decay: Scalar,
    eps: float,
    lr: Scalar,
) -> torch.Tensor:
    """``lr * eta * ‖p‖ / (‖g‖ + weight_decay * ‖p‖ + eps)`` per tensor, ``lr`` where a norm is 0.

    Computed in float64, as MMSelfSup computes it with Python floats from the norms.
    """
    weight, grad = param_norms.double(), grad_norms.double()
    local = weight * eta / (grad + weight * weight_decay + eps)
    local = torch.where((weight != 0) & (grad != 0), local, 1.0)
    return local * lr


class LARS(PackedOptimizer):
    """LARS as MMSelfSup implements it (You et al., 2017), with the learning rate inside momentum.

    For each parameter ``p`` with gradient ``g`` (per group: lr, momentum, dampening,
    weight_decay, eta, nesterov; ``lars_exclude`` from the group, default False)::

        local = 1                                        if lars_exclude or ‖p‖ = 0 or ‖g‖ = 0
        local = eta ‖p‖ / (‖g‖ + weight_decay ‖p‖ + eps)  otherwise
        d = (g + weight_decay p) * (local * lr)           # weight decay even when excluded
        buf = d (first step), else momentum buf + (1 - dampening) d
        d = d + momentum buf (nesterov) or buf
        p ← p - d

    ``eps`` belongs to the optimizer, not to the groups. Set ``lars_exclude=True`` (and
    ``weight_decay=0``) on bias and norm groups, as MMSelfSup's configs do.

    ``fused=True`` (a group option, as torch's): on the CPU, float32 tensors without
    nesterov step through torch's fused SGD kernel, one pass per tensor after its two
    norms, with the per-tensor numbers read on the host (see :mod:`optiplug_larc.fused`);
    elsewhere it changes nothing. The default keeps every step free of host reads.

    Example::

        LARS(model.parameters(), lr=4.8, momentum=0.9, weight_decay=1e-6)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        eta: float = 0.001,
        nesterov: bool = False,
        eps: float = 1e-8,
        fused: bool = False,
    ) -> None:
        require_number(eps, "eps")
        self.eps = float(eps)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "eta": eta,
            "nesterov": nesterov,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def __getstate__(self) -> dict[str, Any]:
        return super().__getstate__() | {"eps": self.eps}

    def _check_group(self, group: dict[str, Any], path: str) -> None:
        for name in ("lr", "momentum", "weight_decay", "dampening", "eta"):
            require_number(group[name], join_path(path, name))
        require_bool(group["nesterov"], join_path(path, "nesterov"))
        require_bool(group.get("fused", False), join_path(path, "fused"))
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(
                f"nesterov needs momentum > 0 and dampening 0, got momentum={group['momentum']!r}, "
                f"dampening={group['dampening']!r}",
                join_path(path, "nesterov"),
            )

    def _step_part(self, group: dict[str, Any], part: Part, members: Tensors, grads: Tensors) -> None:
        if (
            group.get("fused", False)
            and not any(self._over)
            and fused_path.usable(part, members, grads, group["nesterov"])
            and self._fused_step(group, part, members, grads)
        ):
            return
        lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
        params = part.pack(members, "param")
        gradients = part.pack(grads, "grad")
        factor: Factors | Scalar = lr
        rates: torch.Tensor | None = None
        if not group.get("lars_exclude", False):
            param_norms, grad_norms = self._norms(params, gradients)
            rates = local_lrs(
                param_norms, grad_norms, eta=group["eta"], weight_decay=weight_decay, eps=self.eps, lr=lr
            ).to(torch.promote_types(members[0].dtype, torch.float32))
            factor = Factors(part, rates)
        if momentum != 0 and not group["nesterov"]:
            self._heavy_ball(group, part, members, params, gradients, rates)
            return
        update = gradients.plus(params, weight_decay).mul_(factor)
        if momentum != 0:
            update = self._momentum(group, part, members, update)
        params.add_(update, alpha=-1.0)
        part.unpack_into(members, "param")

    def _fused_step(self, group: dict[str, Any], part: Part, members: Tensors, grads: Tensors) -> bool:
        """The step as torch's fused SGD (lr 1) on ``d = rate g + rate weight_decay p``: see :mod:`optiplug_larc.fused`.

        False (and no change) where a momentum buffer is not contiguous (a loaded state
        can be); the multi-tensor path then takes the part.
        """
        lr, weight_decay, momentum, eta = group["lr"], group["weight_decay"], group["momentum"], group["eta"]
        exclude, eps = bool(group.get("lars_exclude", False)), self.eps

        def block_coefficients(param_norms: torch.Tensor, grad_norms: torch.Tensor) -> tuple[torch.Tensor, Any]:
            if exclude:
                rates = torch.full_like(param_norms, float(lr))
            else:
                rates = local_lrs(param_norms, grad_norms, eta=eta, weight_decay=weight_decay, eps=eps, lr=lr)
                rates = rates.to(torch.float32)
            return rates, (rates * weight_decay if weight_decay != 0 else None)

        def single_coefficients(param_norm: float, grad_norm: float) -> tuple[float, float]:
            local = 1.0
            if not exclude and param_norm != 0 and grad_norm != 0:
                local = param_norm * eta / (grad_norm + param_norm * weight_decay + eps)
            return local * lr, weight_decay

        buffers, fresh = self._state_buffers(members, "momentum_buffer", part) if momentum != 0 else (None, [])
        if buffers is not None and not all(map(torch.Tensor.is_contiguous, buffers)):
            for unit in fresh:
                del self.state[members[unit]]["momentum_buffer"]
            return False
        fused_path.step(
            part,
            members,
            grads,
            buffers,
            fresh,
            block_coefficients=block_coefficients,
            single_coefficients=single_coefficients,
            norms=not exclude,
            lr=1.0,
            momentum=momentum,
            dampening=group["dampening"],
        )
        return True

    def _heavy_ball(
        self,
        group: dict[str, Any],
        part: Part,
        members: list[torch.Tensor],
        params: Packed,
        gradients: Packed,
        rates: torch.Tensor | None,
    ) -> None:
        """``buf = momentum buf + c g + c weight_decay p; p -= buf``, ``c = (1 - dampening) rate`` per unit.

        The same update as :meth:`_momentum` in three passes over the buffer and no new
        tensor: the weight decay is added to the buffer, not to a copy of the gradient.
        A fresh buffer (zeros) takes the whole step, undamped, as in MMSelfSup.
        """
        momentum, dampening, weight_decay = group["momentum"], group["dampening"], group["weight_decay"]
        buffers, fresh = self._state_buffers(members, "momentum_buffer")
        if rates is None:
            dtype = torch.promote_types(members[0].dtype, torch.float32)
            rates = torch.full((part.size,), float(group["lr"]), dtype=dtype, device=part.device)
        damped = rates * (1 - dampening)
        if fresh:
            damped[fresh] = rates[fresh]
        buffer = part.pack(buffers, "momentum").mul_(momentum)
        buffer.addcmul_(gradients, Factors(part, damped))
        if weight_decay != 0:
            buffer.addcmul_(params, Factors(part, damped * weight_decay))
        params.add_(buffer, alpha=-1.0)
        part.unpack_into(buffers, "momentum")
        part.unpack_into(members, "param")

    def _momentum(self, group: dict[str, Any], part: Part, members: list[torch.Tensor], update: Packed) -> Packed:
        momentum = group["momentum"]
        buffers, fresh = self._state_buffers(members, "momentum_buffer")
        buffer = part.pack(buffers, "momentum").mul_(momentum).add_(update, alpha=1 - group["dampening"])
        buffer.copy_units_(update, fresh)
        part.unpack_into(buffers, "momentum")
        return update.add_(buffer, alpha=momentum) if group["nesterov"] else buffer
