"""The MMEngine config dialect: ``optim_wrapper``, ``param_scheduler``, ``train_cfg``, ``auto_scale_lr``.

Read keys (docs/plugins/mmengine.md lists each with what is read, warned or refused):

* ``optim_wrapper``: ``type`` (OptimWrapper, AmpOptimWrapper), ``optimizer=dict(type=...)``,
  ``paramwise_cfg``, ``constructor`` (the default one), ``clip_grad``,
  ``accumulative_counts``, AmpOptimWrapper's ``loss_scale`` and ``dtype``;
* ``param_scheduler``: one dict or a list, every MMEngine scheduler in its LR, Momentum
  and Param forms, chained by option as MMEngine's runner steps them (``mmengine``
  schedule);
* ``train_cfg``: EpochBasedTrainLoop (``max_epochs``) or IterBasedTrainLoop
  (``max_iters``); a scheduler's missing ``end`` is the loop's end, as MMEngine's runner
  sets it;
* ``auto_scale_lr``: with ``enable=True`` the lr times ``global batch / base_batch_size``
  (the global batch: ``train_dataloader.batch_size``, or build()'s
  ``batch_size_per_device``, times the world size).

Every other top-level key (model, data, hooks, ...) is left alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from optiplug.plugin import (
    AccumulationConfig,
    ClipConfig,
    ConfigError,
    DialectContext,
    NormType,
    OptimizerConfig,
    OptiplugWarning,
    Recipe,
    RegistryView,
    RuleConfig,
    RunConfig,
    ScheduleConfig,
    did_you_mean,
    distributed_world,
    is_number,
    structure_config,
)
from optiplug_mmengine.amp import loss_scale_config
from optiplug_mmengine.mmdet_layer_decay import CONSTRUCTOR as MMDET_CONSTRUCTOR
from optiplug_mmengine.mmdet_layer_decay import KEYS as MMDET_KEYS
from optiplug_mmengine.mmdet_layer_decay import MMDetLayerDecay, read_paramwise
from optiplug_mmengine.paramwise import MULTIPLIERS, MMEngineParamwise
from optiplug_mmengine.schedulers import OPTIONS, parse_scheduler

WRAPPERS = ("OptimWrapper", "AmpOptimWrapper")
WRAPPER_KEYS = {
    "OptimWrapper": ("type", "optimizer", "paramwise_cfg", "constructor", "clip_grad", "accumulative_counts"),
    "AmpOptimWrapper": (
        "type",
        "optimizer",
        "paramwise_cfg",
        "constructor",
        "clip_grad",
        "accumulative_counts",
        "loss_scale",
        "dtype",
        "use_fsdp",
    ),
}
DEFAULT_CONSTRUCTOR = "DefaultOptimWrapperConstructor"
CONSTRUCTORS = {
    DEFAULT_CONSTRUCTOR: (*MULTIPLIERS, "custom_keys", "bypass_duplicate"),
    "LearningRateDecayOptimWrapperConstructor": (
        "layer_decay_rate",
        "bias_decay_mult",
        "norm_decay_mult",
        "flat_decay_mult",
        "custom_keys",
    ),
    MMDET_CONSTRUCTOR: MMDET_KEYS,
}
"""The constructors read, and the paramwise_cfg keys each reads."""
OWNERS = {DEFAULT_CONSTRUCTOR: "MMEngine's ", MMDET_CONSTRUCTOR: "mmdet's "}
OWNERS["LearningRateDecayOptimWrapperConstructor"] = "mmpretrain's "
FORMS = {"LR": "lr", "Momentum": "momentum", "ParamScheduler": None}
"""The class-name suffixes of MMEngine's schedulers and the option they drive (Param: ``param_name``)."""
PLATEAU = ("ReduceOnPlateau",)
"""Driven by validation metrics: ``built.report(metrics)`` (docs/plugins/mmengine.md)."""
READ_KEYS = ("optim_wrapper", "param_scheduler", "train_cfg", "auto_scale_lr", "train_dataloader")
PATHS = {
    "optimizer": "optim_wrapper.optimizer",
    "optimizer.name": "optim_wrapper.optimizer.type",
    "rules": "optim_wrapper.paramwise_cfg",
    "schedules": "param_scheduler",
    "clip": "optim_wrapper.clip_grad",
    "accumulation": "optim_wrapper.accumulative_counts",
    "lr_scaling": "auto_scale_lr",
}
"""Recipe paths in build()'s errors -> this dialect's keys (the longest prefix wins)."""


def unscoped(name: Any) -> Any:
    """A registry name without its scope: ``'mmdet.QuadraticWarmupLR'`` is ``'QuadraticWarmupLR'``.

    MMEngine looks a scoped name up in that scope's registry; optiplug has one registry.
    """
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else name


def detect(mapping: Mapping[str, Any]) -> bool:
    """An MMEngine config has ``optim_wrapper`` as a dict."""
    return isinstance(mapping.get("optim_wrapper"), Mapping)


def translate(config: Mapping[str, Any], context: DialectContext) -> Recipe:
    """The canonical recipe of an MMEngine config."""
    registry = context.registry
    # only the keys read here: the others (model, pipelines) may hold values the .py reader left unevaluated
    config = {key: _without_delete(config[key]) for key in READ_KEYS if key in config}
    wrapper = config["optim_wrapper"]
    kind = _wrapper_type(wrapper)
    optimizer, rules = read_optimizer(wrapper, registry)
    scale = _lr_scale(config.get("auto_scale_lr"), config, context)
    if scale != 1.0:
        optimizer = _scaled(optimizer, scale)
        rules = [_scaled_rule(rule, scale) for rule in rules]
    max_epochs, max_iters = read_train_cfg(config.get("train_cfg"), context)
    schedules = read_param_scheduler(
        config.get("param_scheduler"),
        iter_based=max_iters is not None,
        epoch_length=context.steps_per_epoch,
        loop=(max_epochs, max_iters),
    )
    loss_scale = loss_scale_config(wrapper, registry)
    if kind == "AmpOptimWrapper":
        _warn_amp(wrapper)
    clip = read_clip_grad(wrapper.get("clip_grad"))
    steps = _whole(wrapper.get("accumulative_counts", 1), "optim_wrapper.accumulative_counts", 1)
    if (schedules or steps > 1) and max_epochs is not None and context.steps_per_epoch is None:
        raise ConfigError(
            f"the EpochBasedTrainLoop runs {max_epochs} epochs: pass steps_per_epoch, its iterations per epoch "
            "(len(train_dataloader)): build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N",
            "train_cfg",
        )
    return Recipe(
        optimizer=optimizer,
        rules=rules,
        schedules=schedules,
        clip=clip,
        accumulation=AccumulationConfig(steps, "iterations"),
        loss_scale=loss_scale,
        run=RunConfig(num_epochs=max_epochs, total_steps=max_iters),
    )


def _without_delete(value: Any) -> Any:
    """MMEngine's merged config has no ``_delete_`` keys (one left where no base value was replaced is dropped)."""
    if isinstance(value, Mapping):
        return {k: _without_delete(v) for k, v in value.items() if k != "_delete_"}
    if isinstance(value, list | tuple):
        return type(value)(_without_delete(v) for v in value)
    return value


def _wrapper_type(wrapper: Mapping[str, Any]) -> str:
    kind = unscoped(wrapper.get("type", "OptimWrapper"))
    if kind not in WRAPPERS:
        hint = did_you_mean(str(kind), WRAPPERS)
        if kind == "ApexOptimWrapper":
            hint = "; apex's amp is not supported: use AmpOptimWrapper (torch.amp)"
        if kind == "DeepSpeedOptimWrapper":
            hint = (
                "; DeepSpeed builds its optimizer inside its engine (the runner's strategy=DeepSpeedStrategy), "
                "which optiplug does not drive: use OptimWrapper or AmpOptimWrapper"
            )
        raise ConfigError(f"unknown optim wrapper {kind!r}{hint}; known: {', '.join(WRAPPERS)}", "optim_wrapper.type")
    for key in wrapper:
        if key not in WRAPPER_KEYS[kind]:
            accepted = WRAPPER_KEYS[kind]
            raise ConfigError(
                f"{kind} takes no {key!r}{did_you_mean(str(key), accepted)}; accepted: {', '.join(accepted)}",
                f"optim_wrapper.{key}",
            )
    if wrapper.get("use_fsdp"):
        raise ConfigError("FSDP is not supported by optiplug's step; remove use_fsdp", "optim_wrapper.use_fsdp")
    return str(kind)


def read_optimizer(wrapper: Mapping[str, Any], registry: RegistryView) -> tuple[OptimizerConfig, list[RuleConfig]]:
    """``optim_wrapper.optimizer`` and ``paramwise_cfg`` as the optimizer and one ``mmengine_paramwise`` rule."""
    path = "optim_wrapper.optimizer"
    value = wrapper.get("optimizer")
    if not isinstance(value, Mapping) or "type" not in value:
        raise ConfigError(f"expected dict(type='SGD', lr=...), got {value!r}", path)
    spec = registry.optimizers.get(unscoped(value["type"]), f"{path}.type")
    constructor = unscoped(wrapper.get("constructor", DEFAULT_CONSTRUCTOR))
    if constructor not in CONSTRUCTORS:
        raise ConfigError(
            f"unknown constructor {constructor!r}{did_you_mean(str(constructor), CONSTRUCTORS)}; known: "
            f"{', '.join(CONSTRUCTORS)}",
            "optim_wrapper.constructor",
        )
    kwargs = {str(k): v for k, v in value.items() if k != "type"}
    rules: list[RuleConfig] = []
    paramwise = wrapper.get("paramwise_cfg")
    if constructor == MMDET_CONSTRUCTOR:
        return OptimizerConfig(spec.name, kwargs), [_mmdet_rule(paramwise, kwargs, registry)]
    if paramwise is not None:
        ppath = "optim_wrapper.paramwise_cfg"
        if not isinstance(paramwise, Mapping):
            raise ConfigError(f"expected None or a dict, got {paramwise!r}", ppath)
        has_weight_decay = kwargs.get("weight_decay") is not None
        if not has_weight_decay:
            _check_decay_base(paramwise, ppath)
        params = {
            **_known_paramwise_keys(paramwise, ppath, constructor),
            "has_weight_decay": has_weight_decay,
            "constructor": constructor,
        }
        cfg = structure_config(params, MMEngineParamwise, registry, ppath)
        rules.append(RuleConfig("mmengine_paramwise", cfg, {}, {}, "paramwise_cfg"))
    elif constructor != DEFAULT_CONSTRUCTOR:
        rules.append(
            RuleConfig("mmengine_paramwise", MMEngineParamwise(constructor=constructor), {}, {}, "constructor")
        )
    return OptimizerConfig(spec.name, kwargs), rules


def _mmdet_rule(paramwise: Any, kwargs: Mapping[str, Any], registry: RegistryView) -> RuleConfig:
    """The rule of mmdet's LearningRateDecayOptimizerConstructor: one ``mmdet_layer_decay`` rule."""
    ppath = "optim_wrapper.paramwise_cfg"
    if paramwise is not None and not isinstance(paramwise, Mapping):
        raise ConfigError(f"expected a dict, got {paramwise!r}", ppath)
    if paramwise is not None and kwargs.get("weight_decay") is None:
        _check_decay_base(paramwise, ppath)
    params = read_paramwise(paramwise, kwargs.get("weight_decay") is not None, ppath)
    _known_paramwise_keys(paramwise or {}, ppath, MMDET_CONSTRUCTOR)
    cfg = structure_config(params, MMDetLayerDecay, registry, ppath)
    return RuleConfig("mmdet_layer_decay", cfg, {}, {}, "paramwise_cfg")


def _known_paramwise_keys(paramwise: Mapping[str, Any], path: str, constructor: str) -> dict[str, Any]:
    """paramwise_cfg without the keys the constructor never reads (it ignores them; optiplug warns)."""
    known = list(CONSTRUCTORS[constructor])
    for key in paramwise:
        if key not in known:
            warnings.warn(
                f"{path}.{key}: not a paramwise_cfg key{did_you_mean(str(key), known)}; "
                f"{OWNERS.get(constructor, '')}{constructor} ignores it, and so does optiplug",
                OptiplugWarning,
                stacklevel=2,
            )
    return {key: value for key, value in paramwise.items() if key in known}


def _check_decay_base(paramwise: Mapping[str, Any], path: str) -> None:
    """MMEngine's check: a decay multiplier (flat_decay_mult aside) needs the optimizer's weight_decay."""
    given = [key for key in ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult") if key in paramwise]
    keys = paramwise.get("custom_keys")
    if isinstance(keys, Mapping):
        given += [
            f"custom_keys[{k!r}].decay_mult" for k, v in keys.items() if isinstance(v, Mapping) and "decay_mult" in v
        ]
    if given:
        raise ConfigError(
            f"{given[0]} needs optim_wrapper.optimizer.weight_decay, which is not set (MMEngine raises "
            "'base_wd should not be None')",
            f"{path}.{given[0]}",
        )


def _scaled(optimizer: OptimizerConfig, scale: float) -> OptimizerConfig:
    kwargs = dict(optimizer.kwargs)
    if not is_number(kwargs.get("lr")):
        raise ConfigError("auto_scale_lr scales the optimizer's lr, which is not set", "optim_wrapper.optimizer.lr")
    kwargs["lr"] = kwargs["lr"] * scale
    return OptimizerConfig(optimizer.name, kwargs)


def _scaled_rule(rule: RuleConfig, scale: float) -> RuleConfig:
    # A custom key that fixes an lr is scaled too: MMEngine scales every group's lr.
    params = rule.params
    if not isinstance(params, MMEngineParamwise) or not any("lr" in e for e in params.custom_keys.values()):
        return rule
    keys = {k: ({**e, "lr": e["lr"] * scale} if "lr" in e else e) for k, e in params.custom_keys.items()}
    import attrs

    return attrs.evolve(rule, params=attrs.evolve(params, custom_keys=keys))


def _lr_scale(value: Any, config: Mapping[str, Any], context: DialectContext) -> float:
    """MMEngine's Runner.scale_lr: ``real_bs / base_batch_size`` when enabled (1 otherwise)."""
    path = "auto_scale_lr"
    if value is None:
        return 1.0
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected dict(base_batch_size=..., enable=...), got {value!r}", path)
    for key in value:
        if key not in ("base_batch_size", "enable"):
            raise ConfigError(f"unknown key {key!r}; accepted: base_batch_size, enable", f"{path}.{key}")
    if not value.get("enable", False):
        return 1.0
    if "base_batch_size" not in value:
        raise ConfigError("needs base_batch_size (MMEngine asserts it)", path)
    base = _whole(value["base_batch_size"], f"{path}.base_batch_size", 1)
    per_device = context.batch_size_per_device
    if per_device is None:
        loader = config.get("train_dataloader")
        per_device = loader.get("batch_size") if isinstance(loader, Mapping) else None
        if per_device is None:
            raise ConfigError(
                "auto_scale_lr is enabled but the batch size is unknown: give train_dataloader.batch_size or "
                "build(..., batch_size_per_device=N)",
                path,
            )
        per_device = _whole(per_device, "train_dataloader.batch_size", 1)
    world = context.world_size or distributed_world()[0] or 1
    return float(per_device * world) / float(base)


def read_train_cfg(value: Any, context: DialectContext) -> tuple[int | None, int | None]:
    """``(max_epochs, max_iters)``: one of them, after build()'s ``num_epochs`` (None, None without train_cfg)."""
    path = "train_cfg"
    if value is None:
        return context.num_epochs, None
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected dict(by_epoch=True, max_epochs=...), got {value!r}", path)
    kind = value.get("type")
    if kind is None:
        iter_based = value.get("by_epoch", True) is False
    elif kind in ("EpochBasedTrainLoop", "IterBasedTrainLoop"):
        iter_based = kind == "IterBasedTrainLoop"
    else:
        raise ConfigError(
            f"unknown train loop {kind!r}; known: EpochBasedTrainLoop, IterBasedTrainLoop", f"{path}.type"
        )
    key = "max_iters" if iter_based else "max_epochs"
    if key not in value:
        raise ConfigError(f"{'IterBasedTrainLoop' if iter_based else 'EpochBasedTrainLoop'} needs {key}", path)
    length = _whole(value[key], f"{path}.{key}", 1)
    if iter_based:
        if context.num_epochs is not None:
            raise ConfigError(
                f"the IterBasedTrainLoop runs max_iters={length} iterations; do not pass num_epochs to build()",
                f"{path}.max_iters",
            )
        return None, length
    return (context.num_epochs or length), None


def read_param_scheduler(
    value: Any, *, iter_based: bool, epoch_length: int | None, loop: tuple[int | None, int | None] = (None, None)
) -> dict[str, ScheduleConfig]:
    """``param_scheduler`` as one ``mmengine`` schedule per option, each a chain in the config's order.

    A missing ``end`` is the train loop's end (filled when the schedule is built), except
    for a converted by-epoch scheduler in an IterBasedTrainLoop: there MMEngine's runner
    sets it to the loop's ``max_epochs``, which is 1. ``loop`` is the train loop's
    ``(max_epochs, max_iters)``: a scheduler that begins where the filled end is, MMEngine refuses.
    """
    path = "param_scheduler"
    if value is None:
        return {}
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"expected a scheduler dict or a list of them, got {value!r}", path)
    chains: dict[str, list[dict[str, Any]]] = {}
    for index, item in enumerate(items):
        where = f"{path}[{index}]" if not isinstance(value, Mapping) else path
        option, entry = _scheduler_entry(item, where)
        plateau = entry["kind"] == PLATEAU[0]  # steps on validation metrics, by epoch even in an IterBasedTrainLoop
        if iter_based and entry.get("by_epoch", True) and not entry.get("convert_to_iter_based", False) and not plateau:
            raise ConfigError(
                "an IterBasedTrainLoop has no epochs, so MMEngine never steps a by_epoch scheduler after its first "
                "value; set by_epoch=False (it defaults to True) or convert_to_iter_based=True",
                f"{where}.by_epoch",
            )
        if entry.get("convert_to_iter_based", False) and epoch_length is None:
            raise ConfigError(
                "convert_to_iter_based multiplies by the epoch length: pass steps_per_epoch (len(train_dataloader)): "
                "build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N",
                f"{where}.convert_to_iter_based",
            )
        if iter_based and entry.get("by_epoch", True) and "end" not in entry:
            entry["end"] = 1  # MMEngine's runner: an IterBasedTrainLoop's max_epochs is 1
        parse_scheduler(entry, where)
        _check_filled_end(entry, where, loop, epoch_length)
        chains.setdefault(option, []).append(entry)
    return {
        option: ScheduleConfig("mmengine", _params(entries, iter_based), "step") for option, entries in chains.items()
    }


def _check_filled_end(
    entry: Mapping[str, Any], where: str, loop: tuple[int | None, int | None], epoch_length: int | None
) -> None:
    """MMEngine's runner sets a missing end to the loop's; at or before ``begin`` its scheduler raises ValueError."""
    max_epochs, max_iters = loop
    if "end" in entry:
        return
    end, unit = max_epochs, "epochs"
    if not entry.get("by_epoch", True):
        end, unit = max_iters, "iterations"
        if max_iters is None and max_epochs and epoch_length:
            end, unit = max_epochs * epoch_length, f"iterations ({max_epochs} epochs of steps_per_epoch={epoch_length})"
    begin = entry.get("begin", 0)
    if end is not None and is_number(begin) and not isinstance(begin, str) and begin >= end:
        raise ConfigError(
            f"begins at {begin}, and its end, not given, is the train loop's: {end} {unit}; MMEngine raises 'end "
            "should be larger than begin' (is steps_per_epoch the real len(train_dataloader)?)",
            f"{where}.begin",
        )


def _params(entries: list[dict[str, Any]], iter_based: bool = False) -> Any:
    from optiplug_mmengine.schedulers import MMEngineSchedule

    return MMEngineSchedule(entries, iter_based_loop=iter_based)


def _scheduler_entry(item: Any, path: str) -> tuple[str, dict[str, Any]]:
    """The option a scheduler drives and its entry (``kind`` plus its arguments)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        raise ConfigError(f"expected dict(type='CosineAnnealingLR', ...), got {item!r}", path)
    name = unscoped(item["type"])
    rest = {str(k): v for k, v in item.items() if k != "type"}
    if name == "CosineAnnealingWeightDecay":
        return "weight_decay", {"kind": name, **rest}
    for suffix, option in FORMS.items():
        if name.endswith(suffix) and name[: -len(suffix)] in (*OPTIONS, *PLATEAU):
            kind = name[: -len(suffix)]
            if kind == "OneCycle" and option != "lr" and option is not None:
                break
            if option is None:
                option = rest.pop("param_name", None)
                if not isinstance(option, str):
                    raise ConfigError(f"{name} needs param_name (lr, momentum, weight_decay, ...)", path)
            if kind == "OneCycle" and option != "lr":
                raise ConfigError(f"OneCycle only schedules the lr, got param_name={option!r}", path)
            return option, {"kind": kind, **rest}
    known = [f"{k}{s}" for k in OPTIONS if k != "CosineAnnealingWeightDecay" for s in ("LR", "Momentum")]
    known = [k for k in known if k != "OneCycleMomentum"]
    raise ConfigError(
        f"unknown scheduler {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}, their *ParamScheduler "
        "forms and CosineAnnealingWeightDecay",
        f"{path}.type",
    )


def read_clip_grad(value: Any) -> ClipConfig | None:
    """``clip_grad``: ``dict(max_norm=..., norm_type=2)`` (type 'norm', the default) or ``dict(type='value', ...)``."""
    path = "optim_wrapper.clip_grad"
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"expected None or a non-empty dict such as dict(max_norm=35, norm_type=2), got {value!r}", path
        )
    kind = value.get("type", "norm")
    accepted = {"norm": ("type", "max_norm", "norm_type", "error_if_nonfinite"), "value": ("type", "clip_value")}
    if kind not in accepted:
        raise ConfigError(f"clip_grad type must be 'norm' or 'value', got {kind!r}", f"{path}.type")
    for key in value:
        if key not in accepted[kind]:
            raise ConfigError(
                f"clip_grad of type {kind!r} takes no {key!r}; accepted: {', '.join(accepted[kind])}", f"{path}.{key}"
            )
    if kind == "value":
        if "clip_value" not in value:
            raise ConfigError("clip_grad type 'value' needs clip_value", path)
        return ClipConfig(clip_value=_positive(value["clip_value"], f"{path}.clip_value"))
    if "max_norm" not in value:
        raise ConfigError("needs max_norm (clip_grad_norm_'s required argument)", path)
    if value.get("error_if_nonfinite"):
        raise ConfigError("error_if_nonfinite=True is not supported; remove it", f"{path}.error_if_nonfinite")
    norm_type = value.get("norm_type", 2.0)
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "infinity"):
        norm_type = float("inf")
    return ClipConfig(
        max_norm=_positive(value["max_norm"], f"{path}.max_norm"),
        norm_type=NormType(_positive(norm_type, f"{path}.norm_type", allow_inf=True)),
    )


def _warn_amp(wrapper: Mapping[str, Any]) -> None:
    warnings.warn(
        "optim_wrapper: AmpOptimWrapper's autocast is your training loop's (run the forward pass under "
        "torch.autocast); its loss scaling is the recipe's loss_scale, which built.step(loss) applies",
        OptiplugWarning,
        stacklevel=2,
    )


def _whole(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < minimum:
        raise ConfigError(f"expected a whole number >= {minimum}, got {value!r}", path)
    return int(value)


def _positive(value: Any, path: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"must be a number > 0, got {value!r}", path)
    if value == float("inf") and not allow_inf:
        raise ConfigError(f"must be finite, got {value!r}", path)
    return float(value)
