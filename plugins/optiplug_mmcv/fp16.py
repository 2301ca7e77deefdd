"""MMCV's fp16 optimizer hooks: their loss scale as the ``torch.amp.GradScaler`` ``Built.step`` takes.

A recipe holds no loss scaler, so ``build()`` reads an fp16 hook for its clipping and
accumulation only and warns; :func:`grad_scaler` gives the scaler MMCV 1.x's
``Fp16OptimizerHook`` makes (torch >= 1.6), to pass to ``built.step(loss, scaler)``:

* ``loss_scale='dynamic'``: ``GradScaler()``;
* a float (``512.``): a static scale, ``GradScaler(init_scale=s)`` set back to ``s`` at
  every update (MMCV calls ``loss_scaler.update(s)``); a step whose gradients are not
  finite is still skipped, as in MMCV;
* a dict: ``GradScaler(**loss_scale)``.

>>> scaler = grad_scaler("configs/upernet_convnext_tiny_fp16.py", device="cpu")
>>> built.step(loss, scaler)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from optiplug.plugin import ConfigError, load_config
from optiplug_mmcv.optimizer_config import PATH, check_loss_scale, fp16_hook_config, loss_scale_of


class StaticGradScaler(torch.amp.GradScaler):
    """A GradScaler whose scale stays ``scale``: MMCV's static loss scale."""

    def __init__(self, scale: float, device: str = "cuda") -> None:
        super().__init__(device, init_scale=scale)
        self.static_scale = scale

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        """Back to the static scale after every update, whatever the step found."""
        super().update(self.static_scale if new_scale is None else new_scale)


def grad_scaler(config: Any, device: str = "cuda") -> torch.amp.GradScaler | None:
    """The GradScaler of ``config``'s fp16 hook (None when it trains without fp16)."""
    data = load_config(config).data
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected the config to be a mapping at the top, got {type(data).__name__}")
    loss_scale = loss_scale_of(fp16_hook_config(data))
    if loss_scale is None:
        return None
    check_loss_scale(loss_scale, f"{PATH}.loss_scale")
    if loss_scale == "dynamic":
        return torch.amp.GradScaler(device)
    if isinstance(loss_scale, Mapping):
        return torch.amp.GradScaler(device, **loss_scale)
    return StaticGradScaler(float(loss_scale), device)
