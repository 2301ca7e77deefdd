"""``OPTIMIZER.name`` and its options -> the optimizer and the LARC wrapper.

VISSL builds its optimizers through ClassyVision's registry; each reads some OPTIMIZER keys
(always present, from defaults.yaml) and fills the others with its own defaults:

==========  ==================  ===============================================
VISSL       optiplug optimizer  reads (ClassyVision defaults for the rest)
==========  ==================  ===============================================
sgd         SGD                 momentum, weight_decay, nesterov (+ use_larc)
sgd_fsdp    SGD                 as sgd; use_larc gives LARC with distributed norms
adam        Adam                betas, weight_decay; eps 1e-8, amsgrad false
adamw       AdamW               betas, weight_decay; eps 1e-8, amsgrad false
adamw_mt    AdamW, foreach      as adamw (torch's multi-tensor implementation)
rmsprop     RMSprop             momentum, weight_decay; alpha 0.99, eps 1e-8, centered false
rmsprop_tf  rmsprop_tf          as rmsprop (eps inside the square root; this plugin's)
lars        vissl_lars          momentum, weight_decay; eta 0.001, exclude_bias_and_norm false
==========  ==================  ===============================================

Any other registered optimizer is accepted too: it gets the VISSL keys its constructor
takes, and any other keyword of its constructor written in the block. ``use_zero`` (or
``MODEL.SHARDED_DDP_SETUP.USE_SDP``) adds the ``zero`` wrapper (plugin optiplug_zero)
around the optimizer, after LARC, as ClassyVision's ZeRO wraps the optimizer it builds.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import attrs

from optiplug import ConfigError, OptimizerConfig, WrapperConfig
from optiplug.plugin import RegistryView, did_you_mean, join_path, structure_config
from optiplug_vissl import defaults
from optiplug_vissl.config_readers import flag, known_keys, number, section

PLACEHOLDER_LR = "lr"  # overwritten by param_schedulers.lr before the first update


@attrs.frozen
class Flavour:
    """How VISSL builds one of its named optimizers."""

    target: str
    own: Mapping[str, Any]
    reads: tuple[str, ...]
    larc: bool = False
    distributed_larc: bool = False
    fixed: Mapping[str, Any] = attrs.field(factory=dict)  # constructor arguments no key of the block sets


_SGD_KEYS = ("momentum", "weight_decay", "nesterov")
_ADAM = {"lr": 0.1, "eps": 1e-08, "amsgrad": False}
_RMSPROP = {"lr": 0.1, "alpha": 0.99, "eps": 1e-08, "centered": False}
FLAVOURS = {
    "sgd": Flavour("SGD", {"lr": 0.1}, _SGD_KEYS, larc=True),
    "sgd_fsdp": Flavour("SGD", {"lr": 0.1}, _SGD_KEYS, larc=True, distributed_larc=True),
    "adam": Flavour("Adam", _ADAM, ("betas", "weight_decay")),
    "adamw": Flavour("AdamW", _ADAM | {"lr": 0.01}, ("betas", "weight_decay")),
    "adamw_mt": Flavour("AdamW", _ADAM | {"lr": 0.01}, ("betas", "weight_decay"), fixed={"foreach": True}),
    "rmsprop": Flavour("RMSprop", _RMSPROP, ("momentum", "weight_decay")),
    "rmsprop_tf": Flavour("rmsprop_tf", _RMSPROP, ("momentum", "weight_decay")),
    "lars": Flavour(
        "vissl_lars", {"lr": 0.1, "eta": 0.001, "exclude_bias_and_norm": False}, ("momentum", "weight_decay")
    ),
}
UNSUPPORTED = {
    "zero": "VISSL writes name: zero (with a base_optimizer) itself; write use_zero: true and name the optimizer "
    "to shard (sgd, adamw, ...)",
}
VISSL_KEYS = ("momentum", "weight_decay", "nesterov", "betas")


def optimizer_keys(name: str, registry: RegistryView) -> set[str]:
    """The optimizer-specific keys the OPTIMIZER block may hold for ``name`` (eps, eta, ...)."""
    flavour = FLAVOURS.get(name.lower())
    if flavour is not None:
        return set(flavour.own) - {PLACEHOLDER_LR}
    if name in registry.optimizers:
        return set(_signature(registry, name)) - {PLACEHOLDER_LR, *VISSL_KEYS}
    return set()


def every_optimizer_key() -> dict[str, list[str]]:
    """Optimizer-specific key -> the VISSL optimizers that read it (for error messages)."""
    readers: dict[str, list[str]] = {}
    for vissl_name, flavour in FLAVOURS.items():
        for key in set(flavour.own) - {PLACEHOLDER_LR}:
            readers.setdefault(key, []).append(vissl_name)
    return readers


def optimizer(block: Mapping[str, Any], path: str, registry: RegistryView) -> OptimizerConfig:
    """The optimizer VISSL would build from the merged OPTIMIZER ``block``."""
    name = _checked_name(block["name"], join_path(path, "name"), registry)
    flavour = FLAVOURS.get(name.lower())
    if flavour is None:
        return _generic(name, block, path, registry)
    spec = registry.optimizers.get(flavour.target, join_path(path, "name"))
    kwargs = dict(flavour.own) | dict(flavour.fixed)
    for key in flavour.reads:
        kwargs[key] = _checked(key, block[key], join_path(path, key))
    for key in set(flavour.own) - {PLACEHOLDER_LR}:
        if key in block:
            kwargs[key] = _checked(key, block[key], join_path(path, key))
    if kwargs.get("nesterov") and kwargs.get("momentum") == 0:
        raise ConfigError("nesterov needs momentum > 0 (OPTIMIZER.momentum is 0)", join_path(path, "nesterov"))
    return OptimizerConfig(spec.name, kwargs)


def _checked_name(value: Any, path: str, registry: RegistryView) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected an optimizer name, got {value!r}", path)
    if value.lower() in UNSUPPORTED:
        raise ConfigError(f"{value!r}: {UNSUPPORTED[value.lower()]}", path)
    if value.lower() in FLAVOURS or value in registry.optimizers:
        return value
    known = sorted(set(FLAVOURS) | {n.lower() for n in registry.optimizers.names()})
    raise ConfigError(
        f"unknown optimizer {value!r}{did_you_mean(value.lower(), known)}; known: {', '.join(known)}", path
    )


def _signature(registry: RegistryView, name: str) -> list[str]:
    factory = registry.optimizers.get(name).factory
    try:
        parameters = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _generic(name: str, block: Mapping[str, Any], path: str, registry: RegistryView) -> OptimizerConfig:
    spec = registry.optimizers.get(name, join_path(path, "name"))
    accepted = _signature(registry, name)
    kwargs: dict[str, Any] = {PLACEHOLDER_LR: 0.1} if PLACEHOLDER_LR in accepted else {}
    for key in accepted:
        if key in VISSL_KEYS:
            kwargs[key] = _checked(key, block[key], join_path(path, key))
        elif key != PLACEHOLDER_LR and key in block:
            kwargs[key] = block[key]
    return OptimizerConfig(spec.name, kwargs)


def _checked(key: str, value: Any, path: str) -> Any:
    if key in ("momentum", "alpha"):
        return number(value, path, low=0.0, high=1.0, high_open=True)
    if key in ("weight_decay", "eps", "eta"):
        return number(value, path, low=0.0)
    if key == "betas":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"expected two numbers [beta1, beta2], got {value!r}", path)
        return tuple(number(b, join_path(path, i), low=0.0, high=1.0, high_open=True) for i, b in enumerate(value))
    return flag(value, path)


def larc_wrappers(
    block: Mapping[str, Any], user: Mapping[str, Any], path: str, registry: RegistryView
) -> list[WrapperConfig]:
    """``use_larc: true`` -> the ``larc`` wrapper with ``larc_config``; [] otherwise."""
    if not flag(block["use_larc"], join_path(path, "use_larc")):
        return []
    name = str(block["name"]).lower()
    flavour = FLAVOURS.get(name)
    if flavour is None or not flavour.larc:
        raise ConfigError(
            f"VISSL applies LARC only to sgd; with {block['name']!r} it would silently be ignored. "
            "Set use_larc: false (or use name: lars)",
            join_path(path, "use_larc"),
        )
    config_path = join_path(path, "larc_config")
    written = section(user.get("larc_config"), config_path)
    known_keys(written, defaults.OPTIMIZER["larc_config"], config_path)
    params = defaults.merge(defaults.OPTIMIZER["larc_config"], written, config_path)
    if "larc" not in registry.wrappers:
        raise ConfigError(
            "use_larc needs the 'larc' optimizer wrapper (plugin optiplug_larc), which is not installed", config_path
        )
    if flavour.distributed_larc:
        params["distributed_norm"] = True
    mapping = {"name": "larc", **params}
    return [structure_config(mapping, WrapperConfig, registry, config_path)]


def zero_wrappers(
    block: Mapping[str, Any], path: str, registry: RegistryView, sharded_ddp: bool
) -> list[WrapperConfig]:
    """``use_zero: true`` (or ``MODEL.SHARDED_DDP_SETUP.USE_SDP``) -> the ``zero`` wrapper; [] otherwise."""
    use_path = join_path(path, "use_zero")
    if not (flag(block["use_zero"], use_path) or sharded_ddp):
        return []
    flavour = FLAVOURS.get(str(block["name"]).lower())
    if flavour is not None and flavour.distributed_larc and block["use_larc"]:
        raise ConfigError(
            f"{block['name']!r} with use_larc all-reduces LARC's norms over the ranks (for FSDP-sharded parameters); "
            "with use_zero each rank steps other whole parameters, so those sums would mix different tensors. "
            "Use name: sgd with use_larc",
            use_path,
        )
    if "zero" not in registry.wrappers:
        raise ConfigError("use_zero needs the 'zero' optimizer wrapper (plugin optiplug_zero), not installed", use_path)
    return [structure_config({"name": "zero"}, WrapperConfig, registry, use_path)]
