"""MMCV's fp16 optimizer hooks: their loss scale as the recipe's ``loss_scale``, which ``Built.step`` applies.

:func:`loss_scale_config` maps the hook's ``loss_scale`` onto the recipe (``build()``
does it: ``built.step(loss)`` scales, unscales and skips as the hook does), and
:func:`grad_scaler`, kept for code written before, gives the scaler MMCV 1.x's
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

from optiplug.plugin import ConfigError, LossScaleConfig, RegistryView, grad_scaler_config, load_config
from optiplug_mmcv.optimizer_config import FP16_HOOKS, PATH, check_loss_scale, fp16_hook_config, loss_scale_of


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


def loss_scale_config(hook: Any, registry: RegistryView, path: str = f"{PATH}.loss_scale") -> LossScaleConfig | None:
    """The recipe's ``loss_scale`` for an fp16 hook (None for a hook without fp16).

    ``'dynamic'``: torch's GradScaler defaults; a float: a static scale (``GradScaler(init_scale=s)``
    put back to ``s`` after every step); a dict: ``GradScaler(**loss_scale)``, a dynamic scale.
    """
    loss_scale = loss_scale_of(hook)
    if loss_scale is None:
        return None
    check_loss_scale(loss_scale, path)
    if loss_scale == "dynamic":
        return LossScaleConfig()
    if isinstance(loss_scale, Mapping):
        return grad_scaler_config(loss_scale, registry, path)
    return LossScaleConfig(dynamic=False, init_scale=float(loss_scale))


def fp16_path(config: Mapping[str, Any]) -> str:
    """Where the config writes the hook's ``loss_scale``: ``fp16.loss_scale`` or ``optimizer_config.loss_scale``."""
    fp16, hook = config.get("fp16"), config.get("optimizer_config")
    if isinstance(hook, Mapping) and hook.get("type") in FP16_HOOKS:
        return f"{PATH}.loss_scale"
    return "fp16.loss_scale" if isinstance(fp16, Mapping) and "loss_scale" in fp16 else f"{PATH}.loss_scale"
