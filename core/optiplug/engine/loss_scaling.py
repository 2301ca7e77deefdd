"""The recipe's ``loss_scale``: the ``torch.amp.GradScaler`` that ``Built.step`` owns.

A dynamic scale is torch's GradScaler with the recipe's arguments. A static scale is
what MMCV's ``Fp16OptimizerHook(loss_scale=512.)`` and MMEngine's
``AmpOptimWrapper(loss_scale=512.)`` make on torch >= 1.6: ``GradScaler(init_scale=s)``
given ``update(s)`` after every step, so the scale never moves, while a step whose
gradients are not finite is still skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from optiplug.engine.structuring import structure_config
from optiplug.errors import ConfigError, did_you_mean
from optiplug.plugin_system.records import RegistryView
from optiplug.recipe.model import LossScaleConfig

SCALER_ARGUMENTS = ("init_scale", "growth_factor", "backoff_factor", "growth_interval", "enabled")
"""The arguments of ``torch.amp.GradScaler`` that a ``loss_scale`` written as a dict may hold."""


def grad_scaler_config(arguments: Mapping[str, Any], registry: RegistryView, path: str) -> LossScaleConfig:
    """The dynamic ``loss_scale`` of ``GradScaler(**arguments)`` (a dict ``loss_scale`` of MMCV or MMEngine).

    A key GradScaler does not take is a ConfigError at ``path.<key>`` with a did-you-mean.
    """
    for key in arguments:
        if key not in SCALER_ARGUMENTS:
            raise ConfigError(
                f"GradScaler takes no {key!r}{did_you_mean(str(key), SCALER_ARGUMENTS)}; "
                f"accepted: {', '.join(SCALER_ARGUMENTS)}",
                f"{path}.{key}",
            )
    return structure_config(dict(arguments), LossScaleConfig, registry, path)


class StaticGradScaler(torch.amp.GradScaler):
    """A GradScaler whose scale stays ``init_scale`` (``update`` puts it back every step)."""

    def __init__(self, device: str = "cuda", *, init_scale: float) -> None:
        super().__init__(device, init_scale=init_scale)
        self.static_scale = init_scale

    def update(self, new_scale: Any = None) -> None:
        """Back to the static scale, whatever the step found (``loss_scaler.update(loss_scale)``)."""
        super().update(self.static_scale if new_scale is None else new_scale)


def grad_scaler(config: LossScaleConfig, device: str) -> torch.amp.GradScaler | None:
    """The scaler ``config`` describes on ``device`` (a device type: ``cuda``, ``cpu``); None when not enabled."""
    if not config.enabled:
        return None
    if not config.dynamic:
        return StaticGradScaler(device, init_scale=config.init_scale)
    return torch.amp.GradScaler(
        device,
        init_scale=config.init_scale,
        growth_factor=config.growth_factor,
        backoff_factor=config.backoff_factor,
        growth_interval=config.growth_interval,
    )
