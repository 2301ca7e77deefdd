"""AmpOptimWrapper's loss scaling: the recipe's ``loss_scale`` (applied by ``built.step``), or a GradScaler.

:func:`loss_scale_config` is what the dialect writes into the recipe; :func:`grad_scaler`,
kept for code written before, makes the scaler to pass to ``built.step(loss, scaler=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from optiplug.plugin import ConfigError, LossScaleConfig, RegistryView, grad_scaler_config

PATH = "optim_wrapper.loss_scale"


def loss_scale_config(optim_wrapper: Mapping[str, Any], registry: RegistryView) -> LossScaleConfig | None:
    """The recipe's ``loss_scale`` for an ``optim_wrapper`` dict (None for a plain OptimWrapper).

    As AmpOptimWrapper builds its scaler: ``'dynamic'`` (the default) torch's GradScaler
    defaults, a float a static scale (``GradScaler(init_scale=s)``, ``update(s)`` every
    step), a dict ``GradScaler(**loss_scale)``.
    """
    if optim_wrapper.get("type", "OptimWrapper") != "AmpOptimWrapper":
        return None
    loss_scale = optim_wrapper.get("loss_scale", "dynamic")
    if loss_scale == "dynamic":
        return LossScaleConfig()
    if isinstance(loss_scale, float):
        if not 0 < loss_scale < float("inf"):
            raise ConfigError(f"a static loss scale must be a finite float > 0, got {loss_scale!r}", PATH)
        return LossScaleConfig(dynamic=False, init_scale=loss_scale)
    if isinstance(loss_scale, Mapping):
        return grad_scaler_config(loss_scale, registry, PATH)
    raise ConfigError(f"loss_scale must be a float, a dict or 'dynamic', got {loss_scale!r}", PATH)


class StaticGradScaler(torch.amp.GradScaler):
    """A fixed loss scale: MMEngine's ``loss_scale=<float>`` (``update`` puts the scale back every step)."""

    def __init__(self, device: str = "cuda", *, init_scale: float) -> None:
        super().__init__(device, init_scale=init_scale)
        self.static_scale = init_scale

    def update(self, new_scale: Any = None) -> None:
        """Keep the scale fixed, as MMEngine's ``loss_scaler.update(loss_scale)``."""
        super().update(self.static_scale if new_scale is None else new_scale)


def grad_scaler(optim_wrapper: Mapping[str, Any], device: str = "cuda") -> torch.amp.GradScaler | None:
    """The GradScaler an ``optim_wrapper`` dict asks for (None for a plain OptimWrapper).

    ``loss_scale='dynamic'`` (the default): ``GradScaler()``; a float: that fixed scale;
    a dict: ``GradScaler(**loss_scale)``, as MMEngine's AmpOptimWrapper builds it.
    """
    if optim_wrapper.get("type", "OptimWrapper") != "AmpOptimWrapper":
        return None
    loss_scale = optim_wrapper.get("loss_scale", "dynamic")
    if loss_scale == "dynamic":
        return torch.amp.GradScaler(device)
    if isinstance(loss_scale, float):
        return StaticGradScaler(device, init_scale=loss_scale)
    if isinstance(loss_scale, Mapping):
        return torch.amp.GradScaler(device, **loss_scale)
    raise ConfigError(
        f"loss_scale must be a float, a dict or 'dynamic', got {loss_scale!r}", "optim_wrapper.loss_scale"
    )
