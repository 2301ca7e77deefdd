"""VISSL's ``lars`` (``vissl/optimizers/lars.py``, from Barlow Twins), multi-tensor and sync-free."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optiplug.plugin import join_path
from optiplug_larc.checks import require_bool, require_number
from optiplug_larc.packed_optimizer import PackedOptimizer
from optiplug_larc.packing import Factors, Part, Tensors


def update_ratios(param_norms: torch.Tensor, update_norms: torch.Tensor, eta: float) -> torch.Tensor:
    """``eta * ‖p‖ / ‖g + weight_decay p‖`` per tensor, 1 where either norm is 0."""
    ratio = param_norms * eta / update_norms
    return torch.where((param_norms > 0) & (update_norms > 0), ratio, 1.0)


class VisslLARS(PackedOptimizer):
    """VISSL's LARS (Barlow Twins): trust ratio on the decayed gradient, no eps, no clip.

    For each parameter ``p`` with gradient ``g``::

        u = g + weight_decay p                          # decay even when ‖p‖ = 0
        u = u * eta ‖p‖ / ‖u‖    unless a norm is 0, or exclude_bias_and_norm and p.ndim == 1
        mu = momentum mu + u                            # mu starts at zeros
        p ← p - lr mu

    Example::

        VisslLARS(model.parameters(), lr=0.2, weight_decay=1.5e-6, exclude_bias_and_norm=True)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
        exclude_bias_and_norm: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "exclude_bias_and_norm": exclude_bias_and_norm,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any], path: str) -> None:
        for name in ("lr", "momentum", "weight_decay", "eta"):
            require_number(group[name], join_path(path, name))
        require_bool(group["exclude_bias_and_norm"], join_path(path, "exclude_bias_and_norm"))

    def _step_part(self, group: dict[str, Any], part: Part, members: Tensors, grads: Tensors) -> None:
        params = part.pack(members, "param")
        update = part.pack(grads, "grad").plus(params, group["weight_decay"])
        adapted = part.memo(("adapted", group["exclude_bias_and_norm"]), lambda: _adapted(group, part))
        if adapted is not None:
            param_norms, update_norms = self._norms(params, update)
            ratios = update_ratios(param_norms, update_norms, group["eta"])
            if adapted is not True:
                ratios = torch.where(adapted, ratios, 1.0)
            update.mul_(Factors(part, ratios))
        buffers, _ = self._state_buffers(members, "mu")
        mu = part.pack(buffers, "mu").mul_(group["momentum"]).add_(update)
        part.unpack_into(buffers, "mu")
        params.add_(mu, alpha=-group["lr"])
        part.unpack_into(members, "param")


def _adapted(group: dict[str, Any], part: Part) -> torch.Tensor | bool | None:
    """True: every unit is adapted; None: none is; else a per-unit mask (1-D tensors excluded)."""
    if not group["exclude_bias_and_norm"]:
        return True
    if all(ndim == 1 for ndim in part.ndims):
        return None
    if all(ndim != 1 for ndim in part.ndims):
        return True
    return torch.tensor([ndim != 1 for ndim in part.ndims], device=part.device)
