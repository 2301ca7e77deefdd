"""AmpOptimWrapper's loss scaling as a ``torch.amp.GradScaler`` for ``built.step(loss, scaler=...)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from optiplug.plugin import ConfigError


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
