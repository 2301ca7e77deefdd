"""``optimizer_config``: MMCV's optimizer hook -> the recipe's clipping and accumulation.

* ``grad_clip=dict(max_norm=..., norm_type=2)`` clips the gradients of the optimizer's
  parameters before every update (once per update with accumulation).
* ``dict(type='DistOptimizerHook', update_interval=n)`` (MMSelfSup), ``dict(update_interval=n)``
  without a type, and ``dict(type='GradientCumulativeOptimizerHook', cumulative_iters=n)``
  (MMCV) accumulate n iterations per update: the loss is divided by n (by the remainder
  in the last ``T mod n`` iterations), windows are counted over the whole run, and the
  schedules move every iteration (``schedule_clock: iterations``).
* the fp16 hooks (``Fp16OptimizerHook``, ``GradientCumulativeFp16OptimizerHook``,
  MMSelfSup's ``GradAccumFp16OptimizerHook``, or a top-level ``fp16=dict(loss_scale=...)``
  as the train APIs of MMDetection, MMClassification and MMSelfSup read it) are read for
  their clipping and accumulation; their loss scale is the recipe's ``loss_scale``
  (:func:`optiplug_mmcv.fp16.loss_scale_config`), which ``Built.step(loss)`` applies.
* ``frozen_layers_cfg=dict(prototypes=5005)`` (MMSelfSup's hooks) is the recipe's ``freeze``
  (:func:`read_frozen_layers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optiplug.plugin import (
    AccumulationConfig,
    ClipConfig,
    ConfigError,
    FreezeConfig,
    NormType,
    RegistryView,
    RuleConfig,
    did_you_mean,
    structure_config,
)
from optiplug_mmcv.whole_numbers import is_whole, whole_number

CLIP_KEYS = ("max_norm", "norm_type")
HOOK_KEYS: dict[str | None, tuple[str, ...]] = {
    "OptimizerHook": ("grad_clip", "detect_anomalous_params"),
    "GradientCumulativeOptimizerHook": ("grad_clip", "detect_anomalous_params", "cumulative_iters"),
    "DistOptimizerHook": ("grad_clip", "update_interval", "coalesce", "bucket_size_mb", "frozen_layers_cfg"),
    None: (
        "grad_clip",
        "detect_anomalous_params",
        "update_interval",
        "coalesce",
        "bucket_size_mb",
        "frozen_layers_cfg",
    ),
}
FP16_KEYS = ("loss_scale", "distributed", "coalesce", "bucket_size_mb")
HOOK_KEYS["Fp16OptimizerHook"] = ("grad_clip", *FP16_KEYS)
HOOK_KEYS["GradientCumulativeFp16OptimizerHook"] = (*HOOK_KEYS["GradientCumulativeOptimizerHook"], *FP16_KEYS)
HOOK_KEYS["GradAccumFp16OptimizerHook"] = ("grad_clip", "update_interval", "frozen_layers_cfg", *FP16_KEYS)
FP16_HOOKS = ("Fp16OptimizerHook", "GradientCumulativeFp16OptimizerHook", "GradAccumFp16OptimizerHook")
INTERVAL_SYNONYMS = {"cumulative_iters": "update_interval", "update_interval": "cumulative_iters"}
PATH = "optimizer_config"


def read_optimizer_config(value: Any) -> tuple[ClipConfig | None, AccumulationConfig]:
    """The clipping and accumulation an ``optimizer_config`` describes (None: a plain OptimizerHook)."""
    if value is None:
        return None, AccumulationConfig(1, "iterations")
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a dict such as dict(grad_clip=None), got {value!r}", PATH)
    hook = _hook_type(value)
    for key in value:
        if key != "type" and key not in HOOK_KEYS[hook]:
            accepted = HOOK_KEYS[hook]
            synonym = INTERVAL_SYNONYMS.get(str(key))
            hint = f" (did you mean {synonym!r}?)" if synonym in accepted else did_you_mean(str(key), accepted)
            raise ConfigError(
                f"{hook or 'an optimizer hook without type'} takes no {key!r}{hint}; accepted: {', '.join(accepted)}",
                f"{PATH}.{key}",
            )
    if "loss_scale" in value:
        check_loss_scale(value["loss_scale"], f"{PATH}.loss_scale")
    interval_key = "cumulative_iters" if hook in CUMULATIVE_HOOKS else "update_interval"
    steps = whole_number(value.get(interval_key, 1), f"{PATH}.{interval_key}")
    return read_grad_clip(value.get("grad_clip")), AccumulationConfig(steps, "iterations")


def read_frozen_layers(value: Any, registry: RegistryView) -> list[FreezeConfig]:
    """MMSelfSup's ``frozen_layers_cfg=dict(prototypes=5005)`` as the recipe's ``freeze``.

    ``DistOptimizerHook`` / ``GradAccumFp16OptimizerHook`` set to None, before each update
    while ``runner.iter < iters``, the gradient of every parameter whose name contains the
    key: a ``name`` rule frozen until the schedules' step ``iters`` (MMCV's clock counts
    iterations, the update's last one, as ``runner.iter``). A key matching no parameter
    freezes nothing (a warning); ``iters`` of 0 freezes nothing.
    """
    frozen = value.get("frozen_layers_cfg") if isinstance(value, Mapping) else None
    path = f"{PATH}.frozen_layers_cfg"
    if frozen is None:
        return []
    if not isinstance(frozen, Mapping):
        raise ConfigError(f"expected a dict of layer name -> frozen iterations, got {frozen!r}", path)
    freezes = []
    for key, iters in frozen.items():
        if not isinstance(key, str):
            raise ConfigError(f"expected a layer name (a substring of parameter names), got {key!r}", path)
        if is_whole(iters) and iters == 0:
            continue
        until = whole_number(iters, f"{path}.{key}")
        match = structure_config(
            {"kind": "name", "contains": key, "label": f"name contains {key!r}"}, RuleConfig, registry
        )
        freezes.append(FreezeConfig(match=match, until=until))
    return freezes


def _hook_type(value: Mapping[str, Any]) -> str | None:
    hook = value.get("type")
    if hook is None or (isinstance(hook, str) and hook in HOOK_KEYS):
        return hook
    known = [k for k in HOOK_KEYS if k]
    raise ConfigError(
        f"unknown optimizer hook {hook!r}{did_you_mean(str(hook), known)}; known: {', '.join(known)}", f"{PATH}.type"
    )


CUMULATIVE_HOOKS = ("GradientCumulativeOptimizerHook", "GradientCumulativeFp16OptimizerHook")


def fp16_hook_config(config: Mapping[str, Any]) -> Any:
    """``optimizer_config`` as the train APIs make it: ``fp16=dict(...)`` turns it into an fp16 hook.

    MMDetection / MMClassification build ``Fp16OptimizerHook(**optimizer_config, **fp16)``,
    MMSelfSup ``GradAccumFp16OptimizerHook(...)`` (the one that takes ``update_interval``);
    a hook whose ``type`` is already an fp16 hook keeps it (MMSegmentation, whose ``fp16 =
    dict()`` is a placeholder).
    """
    value, fp16 = config.get("optimizer_config"), config.get("fp16")
    if fp16 is None or (isinstance(value, Mapping) and value.get("type") in FP16_HOOKS):
        return value
    if not isinstance(fp16, Mapping):
        raise ConfigError(f"expected dict(loss_scale=...), got {fp16!r}", "fp16")
    if not fp16:
        return value
    for key in fp16:
        if key not in FP16_KEYS:
            raise ConfigError(f"the fp16 hook takes no {key!r}{did_you_mean(str(key), FP16_KEYS)}", f"fp16.{key}")
    base = dict(value) if isinstance(value, Mapping) else {}
    if "type" in base:
        raise ConfigError(
            "with fp16=dict(...) the train API passes optimizer_config to an fp16 hook, which takes no 'type'",
            f"{PATH}.type",
        )
    hook = "GradAccumFp16OptimizerHook" if "update_interval" in base else "Fp16OptimizerHook"
    return {**base, **fp16, "type": hook}


def loss_scale_of(value: Any) -> Any:
    """The fp16 hook's ``loss_scale`` (MMCV's default 512.), or None for a hook without fp16."""
    if not isinstance(value, Mapping) or value.get("type") not in FP16_HOOKS:
        return None
    return value.get("loss_scale", 512.0)


def check_loss_scale(value: Any, path: str) -> None:
    """MMCV accepts 'dynamic', a float (a static scale) or a dict of GradScaler's arguments."""
    if value == "dynamic" or isinstance(value, Mapping):
        return
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return
    raise ConfigError(
        f"expected 'dynamic', a float > 0 (512., a static scale; MMCV refuses an int) or a dict of GradScaler's "
        f"arguments, got {value!r}",
        path,
    )


def read_grad_clip(value: Any) -> ClipConfig | None:
    """``grad_clip``: None, or the keyword arguments of ``clip_grad_norm_``."""
    path = f"{PATH}.grad_clip"
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected None or dict(max_norm=..., norm_type=2), got {value!r}", path)
    for key in value:
        if key not in CLIP_KEYS:
            raise ConfigError(
                f"unknown key{did_you_mean(str(key), CLIP_KEYS)}; accepted: {', '.join(CLIP_KEYS)}", f"{path}.{key}"
            )
    if "max_norm" not in value:
        raise ConfigError("needs max_norm (clip_grad_norm_'s required argument)", path)
    max_norm = _positive(value["max_norm"], f"{path}.max_norm")
    norm_type = _positive(value.get("norm_type", 2.0), f"{path}.norm_type", allow_inf=True)
    return ClipConfig(max_norm=max_norm, norm_type=NormType(norm_type))


def _positive(value: Any, path: str, *, allow_inf: bool = False) -> float:
    if allow_inf and isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"must be a number > 0, got {value!r}", path)
    if not math.isfinite(value) and not allow_inf:
        raise ConfigError(f"must be finite, got {value!r}", path)
    return float(value)
