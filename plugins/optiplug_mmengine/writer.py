"""The canonical recipe written as an MMEngine config: the ``mmengine`` dialect's writer.

``write(recipe, context)`` returns the MMEngine keys ``optim_wrapper``,
``param_scheduler``, ``train_cfg`` and ``auto_scale_lr`` (those the recipe needs) for
the run figures in ``context.run`` (``steps_per_epoch``, ``num_epochs``,
``total_steps``). What it writes:

* the optimizer by its OpenMMLab registry name (torch's classes, mmpretrain's ``LARS``
  and ``Lamb``); ``clip`` as ``clip_grad``; ``accumulation`` as ``accumulative_counts``;
* the ``mmengine_paramwise`` rule (read from an MMEngine config) as its ``paramwise_cfg``
  and ``constructor``, mmdet's ``mmdet_layer_decay`` as its constructor and
  ``paramwise_cfg``; MMCV 1.x's ``mmcv_paramwise`` as the ``paramwise_cfg`` that gives
  each parameter the same options in MMEngine's DefaultOptimWrapperConstructor;
* the ``mmengine`` schedule as its schedulers; MMCV 1.x's policies (Fixed, Step, Exp,
  Poly, CosineAnnealing, LinearAnnealing, FlatCosineAnnealing, CosineRestart, the
  momentum Step / CosineAnnealing / LinearAnnealing) and their linear or constant warmup
  as the MMEngine schedulers that give the same value at every iteration;
* the run as ``train_cfg`` (EpochBasedTrainLoop or IterBasedTrainLoop); a linear
  ``lr_scaling`` as ``auto_scale_lr``.

Anything MMEngine cannot express (an optimizer wrapper such as LARC, a rule kind other
than paramwise_cfg, a schedule with no MMEngine scheduler, a warmup whose product with
an annealing floor MMEngine's chained schedulers compute differently) is a ConfigError
naming the recipe path and why: the writer never writes a config that gives other
values. Every written schedule is checked against the recipe's, value for value, on
the run's clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from optiplug.plugin import (
    Clock,
    ConfigError,
    DialectContext,
    LossScaleConfig,
    Recipe,
    RegistryView,
    RuleConfig,
    ScheduleConfig,
    build_schedule,
    unstructure_config,
)
from optiplug_mmengine.mmdet_layer_decay import CONSTRUCTOR as MMDET_CONSTRUCTOR
from optiplug_mmengine.mmdet_layer_decay import MMDetLayerDecay
from optiplug_mmengine.paramwise import DEFAULT, LAYER_DECAY, MULTIPLIERS, MMEngineParamwise
from optiplug_mmengine.schedulers import MMEngineSchedule

OPENMMLAB_OPTIMIZERS = ("LARS", "Lamb")
"""Optimizers mmpretrain registers, which optiplug implements with mmpretrain's semantics."""
SUFFIX = {"lr": "LR", "momentum": "Momentum"}
TOLERANCE = 1e-9
"""Relative to the option's base: MMEngine chains factors where MMCV computes a closed form."""
AFFINE_HINT = (
    "MMEngine's chained schedulers add the annealing floor after the warmup's factor, MMCV multiplies the floor "
    "too, so the values differ while both move"
)


def write(recipe: Recipe, context: DialectContext) -> dict[str, Any]:
    """The MMEngine config of ``recipe`` on the run figures of ``context.run``."""
    registry = context.registry
    if recipe.wrappers:
        names = ", ".join(w.name for w in recipe.wrappers)
        raise ConfigError(
            f"MMEngine has no optimizer wrappers such as {names} (its OptimWrapper only clips and accumulates); "
            "this recipe cannot be written as an MMEngine config",
            "wrappers[0]",
        )
    if recipe.freeze:
        raise ConfigError(
            "MMEngine's optim_wrapper cannot hold parameters out of the first updates (it has no frozen_layers_cfg); "
            "this recipe cannot be written as an MMEngine config",
            "freeze[0]",
        )
    optimizer = _optimizer(recipe, registry)
    wrapper: dict[str, Any] = {"type": "OptimWrapper", "optimizer": optimizer}
    loss_scale = _loss_scale(recipe)
    if loss_scale is not None:
        wrapper["type"] = "AmpOptimWrapper"
        wrapper["loss_scale"] = loss_scale
    constructor, paramwise = _paramwise(recipe.rules, optimizer, registry)
    if constructor != DEFAULT:
        wrapper["constructor"] = constructor
    if paramwise is not None:
        wrapper["paramwise_cfg"] = paramwise
    clip = _clip(recipe)
    if clip is not None:
        wrapper["clip_grad"] = clip
    if recipe.accumulation.steps > 1:
        if recipe.schedules and recipe.accumulation.schedule_clock != "iterations":
            raise ConfigError(
                "MMEngine steps its schedulers at every iteration (every micro-batch) while this recipe's schedules "
                "advance once per update; set schedule_clock: iterations or drop the schedules",
                "accumulation.schedule_clock",
            )
        wrapper["accumulative_counts"] = recipe.accumulation.steps
    config: dict[str, Any] = {"optim_wrapper": wrapper}
    run = _Run.of(recipe, context)
    schedulers = []
    for option, schedule in recipe.schedules.items():
        entries = _schedule_entries(option, schedule, run, registry, f"schedules.{option}")
        _check_values(option, schedule, entries, run, recipe, registry, f"schedules.{option}")
        schedulers += [_emitted(option, entry) for entry in entries]
    if schedulers:
        config["param_scheduler"] = schedulers
    train_cfg = run.train_cfg()
    if train_cfg is not None:
        config["train_cfg"] = train_cfg
    if recipe.lr_scaling is not None:
        config["auto_scale_lr"] = _auto_scale_lr(recipe)
    return config


def _optimizer(recipe: Recipe, registry: RegistryView) -> dict[str, Any]:
    spec = registry.optimizers.get(recipe.optimizer.name, "optimizer.name")
    if getattr(torch.optim, spec.name, None) is None and spec.name not in OPENMMLAB_OPTIMIZERS:
        raise ConfigError(
            f"optimizer {spec.name!r} has no name in OpenMMLab's registries (torch.optim's classes, mmpretrain's "
            f"{' and '.join(OPENMMLAB_OPTIMIZERS)}); MMEngine cannot build it",
            "optimizer.name",
        )
    return {"type": spec.name, **recipe.optimizer.kwargs}


def _loss_scale(recipe: Recipe) -> str | float | dict[str, Any] | None:
    """AmpOptimWrapper's ``loss_scale`` for the recipe's (None: a plain OptimWrapper)."""
    scale = recipe.loss_scale
    if scale is None or not scale.enabled:
        return None
    if not scale.dynamic:
        return float(scale.init_scale)
    arguments = {
        key: getattr(scale, key)
        for key in ("init_scale", "growth_factor", "backoff_factor", "growth_interval")
        if getattr(scale, key) != getattr(LossScaleConfig(), key)
    }
    return dict(arguments) if arguments else "dynamic"


def _clip(recipe: Recipe) -> dict[str, Any] | None:
    clip = recipe.clip
    if clip is None:
        return None
    if clip.max_norm is not None and clip.clip_value is not None:
        raise ConfigError("MMEngine's clip_grad clips by norm or by value, not both", "clip")
    if clip.clip_value is not None:
        return {"type": "value", "clip_value": clip.clip_value}
    if clip.max_norm is None:
        return None
    return {"max_norm": clip.max_norm, "norm_type": float(clip.norm_type)}


def _auto_scale_lr(recipe: Recipe) -> dict[str, Any]:
    scaling = recipe.lr_scaling
    assert scaling is not None
    base_value = scaling.base_value
    if scaling.method != "linear" or scaling.option != "lr":
        raise ConfigError(
            f"MMEngine's auto_scale_lr scales the lr linearly; this recipe scales {scaling.option!r} "
            f"({scaling.method})",
            "lr_scaling",
        )
    if base_value is not None and base_value != recipe.optimizer.kwargs.get("lr"):
        raise ConfigError(
            "MMEngine's auto_scale_lr scales the optimizer's lr; this recipe scales another base_value "
            f"({base_value!r})",
            "lr_scaling.base_value",
        )
    return {"base_batch_size": scaling.base_batch_size, "enable": True}


# ----------------------------------------------------------------------------- rules


def _rule_name(rule: RuleConfig) -> str:
    """The rule as its config wrote it: its label (a dialect's key), else its kind."""
    return rule.label or rule.kind


def _paramwise(
    rules: list[RuleConfig], optimizer: Mapping[str, Any], registry: RegistryView
) -> tuple[str, dict[str, Any] | None]:
    """``(constructor, paramwise_cfg)`` of the recipe's one paramwise rule (the default constructor without one)."""
    if len(rules) > 1:
        raise ConfigError(
            "MMEngine's optim_wrapper takes one paramwise_cfg (multipliers and custom_keys, no regular expressions) "
            f"and cannot give these {len(rules)} rules' groups: {', '.join(_rule_name(r) for r in rules)}",
            "rules[1]",
        )
    if not rules:
        return DEFAULT, None
    rule, path = rules[0], "rules[0]"
    if rule.kind not in ("mmengine_paramwise", "mmcv_paramwise", "mmdet_layer_decay"):
        label = f" ({rule.label})" if rule.label else ""
        raise ConfigError(
            f"rule kind {rule.kind!r}{label} has no MMEngine equivalent: MMEngine's constructors take a "
            "paramwise_cfg (bias, norm, depthwise and flat multipliers, custom_keys matched as substrings of the "
            "parameter's name)",
            f"{path}.kind",
        )
    if rule.set or rule.schedules:
        key = "set" if rule.set else "schedules"
        raise ConfigError(f"MMEngine's paramwise_cfg has no per-rule {key}; it cannot be written", f"{path}.{key}")
    has_weight_decay = optimizer.get("weight_decay") is not None
    if isinstance(rule.params, MMEngineParamwise):
        return _mmengine_paramwise(rule.params, has_weight_decay, path)
    if isinstance(rule.params, MMDetLayerDecay):
        return _mmdet_layer_decay(rule.params, has_weight_decay, path)
    return DEFAULT, _mmcv_paramwise(unstructure_config(rule.params, registry), path)


def _mmdet_layer_decay(params: MMDetLayerDecay, has_weight_decay: bool, path: str) -> tuple[str, dict[str, Any]]:
    """The LearningRateDecayOptimizerConstructor of mmdet 3.x and its paramwise_cfg, as read."""
    if params.backbone != "auto":
        raise ConfigError(
            f"backbone={params.backbone!r} reads any model's names as ConvNeXt's; mmdet's constructor only takes a "
            "ConvNeXt backbone (backbone: auto)",
            f"{path}.backbone",
        )
    if not has_weight_decay:
        raise ConfigError(f"{MMDET_CONSTRUCTOR} needs the optimizer's weight_decay", "optimizer.weight_decay")
    cfg = {"num_layers": params.num_layers, "decay_rate": params.decay_rate, "decay_type": params.decay_type}
    return MMDET_CONSTRUCTOR, cfg


def _mmengine_paramwise(params: MMEngineParamwise, has_weight_decay: bool, path: str) -> tuple[str, dict[str, Any]]:
    if params.has_weight_decay != has_weight_decay:
        raise ConfigError(
            f"has_weight_decay is {params.has_weight_decay} but the optimizer "
            f"{'sets' if has_weight_decay else 'does not set'} weight_decay; MMEngine reads it from the optimizer",
            f"{path}.has_weight_decay",
        )
    cfg: dict[str, Any] = {key: getattr(params, key) for key in MULTIPLIERS if getattr(params, key) is not None}
    if params.custom_keys:
        cfg["custom_keys"] = {key: dict(entry) for key, entry in params.custom_keys.items()}
    if params.bypass_duplicate:
        cfg["bypass_duplicate"] = True
    if params.constructor == LAYER_DECAY:
        cfg["layer_decay_rate"] = params.layer_decay_rate
    elif params.layer_decay_rate != 1.0:
        raise ConfigError(f"layer_decay_rate needs constructor {LAYER_DECAY}", f"{path}.layer_decay_rate")
    return params.constructor, cfg


def _mmcv_paramwise(cfg: Mapping[str, Any], path: str) -> dict[str, Any]:
    """MMCV 1.x's paramwise_cfg as MMEngine's: the same options for every parameter.

    MMCV always gives a norm layer ``norm_decay_mult`` and a depthwise conv (its bias
    too) ``dwconv_decay_mult`` (default 1); MMEngine only applies a multiplier that is
    set, and decides a bias before a depthwise conv. So ``norm_decay_mult`` is written
    whenever another decay multiplier is, and a ``bias_decay_mult`` that a depthwise
    conv's bias would take instead of ``dwconv_decay_mult`` is refused.
    """
    ones = {
        key: float(cfg.get(key, 1.0))
        for key in ("bias_lr_mult", "bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult", "dcn_offset_lr_mult")
    }
    out: dict[str, Any] = {key: value for key, value in ones.items() if value != 1.0}
    if ones["bias_decay_mult"] != 1.0 and ones["bias_decay_mult"] != ones["dwconv_decay_mult"]:
        raise ConfigError(
            f"MMCV gives a depthwise conv's bias dwconv_decay_mult ({ones['dwconv_decay_mult']:g}), MMEngine gives "
            f"it bias_decay_mult ({ones['bias_decay_mult']:g}): no MMEngine paramwise_cfg gives the same weight "
            "decay for a model with biased depthwise convolutions",
            f"{path}.bias_decay_mult",
        )
    if ("bias_decay_mult" in out or "dwconv_decay_mult" in out) and "norm_decay_mult" not in out:
        out["norm_decay_mult"] = 1.0  # MMCV's norm layers keep the optimizer's decay: MMEngine must not fall through
    keys = cfg.get("custom_keys") or {}
    if keys:
        out["custom_keys"] = {
            key: {k: float(v) for k, v in dict(entry).items() if k in ("lr_mult", "decay_mult") and float(v) != 1.0}
            for key, entry in keys.items()
        }
    if cfg.get("bypass_duplicate"):
        out["bypass_duplicate"] = True
    return out


# ----------------------------------------------------------------------------- the run


@attrs.frozen
class _Run:
    """The run the config is written for: iterations per epoch, and epochs or iterations."""

    epoch_length: int | None
    epochs: int | None
    iterations: int | None

    @classmethod
    def of(cls, recipe: Recipe, context: DialectContext) -> _Run:
        given, own = context.run, recipe.run
        length = given.steps_per_epoch or own.steps_per_epoch
        iterations = given.total_steps or own.total_steps
        epochs = None if iterations is not None else (given.num_epochs or own.num_epochs)
        if iterations is None and epochs is not None and length is not None:
            return cls(length, epochs, None)
        return cls(length, epochs, iterations)

    @property
    def total(self) -> int | None:
        """The run's length in iterations (None: unknown)."""
        if self.iterations is not None:
            return self.iterations
        return None if self.epochs is None or self.epoch_length is None else self.epochs * self.epoch_length

    def clock(self, path: str) -> Clock:
        total = self.total
        if total is None:
            raise ConfigError(
                "the run's length is unknown: pass steps_per_epoch and num_epochs (or a run with total_steps) to "
                "write MMEngine schedulers that give the same values",
                path,
            )
        return Clock(self.epoch_length or total, float(total))

    def train_cfg(self) -> dict[str, Any] | None:
        if self.iterations is not None:
            return {"type": "IterBasedTrainLoop", "max_iters": self.iterations}
        if self.epochs is not None:
            return {"type": "EpochBasedTrainLoop", "max_epochs": self.epochs}
        return None


# ----------------------------------------------------------------------------- schedules


def _emitted(option: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One scheduler entry (``kind`` and its arguments) as MMEngine's ``dict(type=...)``."""
    rest = {k: v for k, v in entry.items() if k != "kind"}
    kind = entry["kind"]
    if kind == "CosineAnnealingWeightDecay":
        return {"type": kind, **rest}
    if option in SUFFIX:
        return {"type": f"{kind}{SUFFIX[option]}", **rest}
    return {"type": f"{kind}ParamScheduler", "param_name": option, **rest}


def _schedule_entries(
    option: str, schedule: ScheduleConfig, run: _Run, registry: RegistryView, path: str
) -> list[dict[str, Any]]:
    if schedule.update_interval != "step":
        raise ConfigError(
            "update_interval: epoch holds a schedule's first value over the epoch; write the schedule itself "
            "by epoch (MMEngine's by_epoch=True) instead",
            f"{path}.update_interval",
        )
    if schedule.name == "mmengine" and isinstance(schedule.params, MMEngineSchedule):
        entries = [dict(entry) for entry in schedule.params.schedulers]
        for index, entry in enumerate(entries):
            if entry["kind"] == "CosineAnnealingWeightDecay" and option != "weight_decay":
                raise ConfigError(
                    f"CosineAnnealingWeightDecay schedules weight_decay, not {option}", f"{path}.schedulers[{index}]"
                )
            if entry["kind"] == "OneCycle" and option != "lr":
                raise ConfigError("MMEngine's OneCycle schedules the lr only", f"{path}.schedulers[{index}]")
        return entries
    writer = MMCV_POLICIES.get(schedule.name)
    if writer is None:
        raise ConfigError(
            f"schedule {schedule.name!r} has no MMEngine scheduler giving the same values; MMEngine configs take "
            f"the mmengine schedule and MMCV 1.x's {', '.join(sorted(MMCV_POLICIES))}",
            f"{path}.name",
        )
    params = unstructure_config(schedule.params, registry) or {}
    return writer(_Policy(option, dict(params), run, path))


@attrs.frozen
class _Policy:
    """An MMCV policy's options, as the writer of its MMEngine schedulers reads them."""

    option: str
    params: dict[str, Any]
    run: _Run
    path: str

    @property
    def by_epoch(self) -> bool:
        return bool(self.params.get("by_epoch", True))

    @property
    def length(self) -> int:
        """MMCV's ``max_progress``: the run's epochs (by_epoch) or iterations."""
        if self.by_epoch:
            if self.run.epochs is None:
                raise ConfigError(
                    "a by_epoch policy needs an epoch-based run (runner max_epochs / num_epochs)",
                    f"{self.path}.by_epoch",
                )
            return self.run.epochs
        total = self.run.total
        if total is None:
            self.run.clock(self.path)
        return int(total)  # type: ignore[arg-type]

    @property
    def epoch_length(self) -> int:
        return self.run.epoch_length or 1

    def entry(self, kind: str, **options: Any) -> dict[str, Any]:
        """A scheduler running in the policy's units (epochs or iterations)."""
        return {"kind": kind, **options, "by_epoch": self.by_epoch}

    def in_iterations(self, unit: int) -> int:
        """Where the policy's ``unit`` (an epoch or an iteration) starts, in iterations."""
        return unit * self.epoch_length if self.by_epoch else unit

    def refuse(self, key: str, why: str) -> ConfigError:
        return ConfigError(why, f"{self.path}.{key}" if key else self.path)

    def floor(self, name: str = "min_lr") -> tuple[dict[str, Any], bool]:
        """``eta_min`` / ``eta_min_ratio`` for MMCV's ``min_lr`` / ``min_lr_ratio`` and whether the floor is nonzero."""
        ratio = self.params.get(f"{name}_ratio")
        if ratio is not None:
            return {"eta_min_ratio": float(ratio)}, float(ratio) != 0.0
        value = float(self.params.get(name) or 0.0)
        return {"eta_min": value}, value != 0.0


def _with_warmup(policy: _Policy, regular: list[dict[str, Any]], first_change: int | None, affine: bool) -> list[Any]:
    """The warmup's scheduler (iteration-based, first in the list), then the regular ones.

    MMCV's warmup multiplies the regular value of iterations ``i < W``: linear by
    ``1 - (1 - i / W) * (1 - ratio)`` (MMEngine's LinearLR from ``ratio`` with
    ``end = W + 1``), constant by ``ratio`` (ConstantLR, which restores at ``W``).
    A regular scheduler with a floor (``affine``) that moves during the warmup chains
    differently in MMEngine and is refused; ``first_change`` is its first move, in
    iterations.
    """
    p = policy.params
    kind = p.get("warmup")
    if kind is None:
        return regular
    if policy.option != "lr":
        raise policy.refuse(
            "warmup",
            "MMCV's momentum warmup divides the momentum by the warmup factor; no MMEngine momentum scheduler does",
        )
    length = int(p.get("warmup_iters", 0)) * (policy.epoch_length if p.get("warmup_by_epoch") else 1)
    ratio = float(p.get("warmup_ratio", 0.1))
    if affine and first_change is not None and first_change < length:
        raise policy.refuse(
            "warmup",
            f"the policy moves at iteration {first_change}, inside the {length}-iteration warmup, and anneals to a "
            f"nonzero floor: {AFFINE_HINT}",
        )
    if kind == "exp":
        raise policy.refuse(
            "warmup", "MMCV's exp warmup (ratio ** (1 - i / W)) has no MMEngine scheduler; use linear or constant"
        )
    if ratio == 1.0:
        return regular
    warm = {"kind": "Linear", "start_factor": ratio, "end_factor": 1.0} if kind == "linear" else {}
    if kind == "constant":
        warm = {"kind": "Constant", "factor": ratio}
    return [{**warm, "begin": 0, "end": length + 1, "by_epoch": False}, *regular]


def _fixed(policy: _Policy) -> list[dict[str, Any]]:
    return _with_warmup(policy, [], None, False)


def _step(policy: _Policy) -> list[dict[str, Any]]:
    p = policy.params
    floor = p.get("min_lr", p.get("min_momentum"))
    if floor is not None and float(floor) != 0.0:
        key = "min_lr" if "min_lr" in p else "min_momentum"
        raise policy.refuse(key, f"MMEngine's StepLR and MultiStepLR have no floor; {key}={floor!r} cannot be written")
    gamma = float(p.get("gamma", 0.1 if policy.option == "lr" else 0.5))
    steps = p["step"]
    end = policy.length
    if isinstance(steps, int):
        regular = [policy.entry("Step", step_size=steps, gamma=gamma, begin=0, end=end)]
    else:
        regular = [policy.entry("MultiStep", milestones=list(steps), gamma=gamma, begin=0, end=end)]
    return _with_warmup(policy, regular, None, False)


def _exp(policy: _Policy) -> list[dict[str, Any]]:
    regular = [policy.entry("Exponential", gamma=float(policy.params["gamma"]), begin=0, end=policy.length)]
    return _with_warmup(policy, regular, None, False)


def _poly(policy: _Policy) -> list[dict[str, Any]]:
    p = policy.params
    floor = float(p.get("min_lr", 0.0))
    total = policy.length
    # MMEngine's PolyLR: (v - eta_min) * (1 - 1 / (T - t + 1)) ** power with T = end - begin - 1
    regular = [policy.entry("Poly", eta_min=floor, power=float(p.get("power", 1.0)), begin=0, end=total + 1)]
    return _with_warmup(policy, regular, policy.in_iterations(1), floor != 0.0)


def _cosine(policy: _Policy) -> list[dict[str, Any]]:
    name = "min_lr" if policy.option == "lr" else "min_momentum"
    floor, affine = policy.floor(name)
    total = policy.length
    regular = [policy.entry("CosineAnnealing", T_max=total, **floor, begin=0, end=total)]
    return _with_warmup(policy, regular, policy.in_iterations(1), affine)


def _linear(policy: _Policy) -> list[dict[str, Any]]:
    name = "min_lr" if policy.option == "lr" else "min_momentum"
    ratio = policy.params.get(f"{name}_ratio")
    absolute = policy.params.get(name)
    if ratio is None and absolute is not None and float(absolute) != 0.0:
        raise policy.refuse(
            name,
            f"MMEngine's LinearLR scales each group by the same factors, so it ends at a fraction of each group's "
            f"value; an absolute {name}={absolute!r} differs from group to group: give {name}_ratio",
        )
    end_factor = float(ratio) if ratio is not None else 0.0
    if not 0.0 <= end_factor <= 1.0:
        raise policy.refuse(f"{name}_ratio", f"MMEngine's LinearLR takes an end_factor in [0, 1], got {end_factor!r}")
    total = policy.length
    regular = [policy.entry("Linear", start_factor=1.0, end_factor=end_factor, begin=0, end=total + 1)]
    return _with_warmup(policy, regular, None, False)


def _flat_cosine(policy: _Policy) -> list[dict[str, Any]]:
    floor, affine = policy.floor()
    total = policy.length
    start = round(total * float(policy.params.get("start_percent", 0.75)))
    if start >= total:
        return _with_warmup(policy, [], None, False)
    regular = [policy.entry("CosineAnnealing", T_max=total - start, **floor, begin=start, end=total)]
    return _with_warmup(policy, regular, policy.in_iterations(start + 1), affine)


def _step_fix_cosine(policy: _Policy) -> list[dict[str, Any]]:
    if policy.params.get("warmup") is not None:
        raise policy.refuse(
            "warmup",
            "MMSelfSup's StepFixCosineAnnealing warms up linearly from 0 (MMEngine's LinearLR cannot start at 0) "
            "and runs its cosine during the warmup",
        )
    return _cosine(policy)


def _cosine_restart(policy: _Policy) -> list[dict[str, Any]]:
    p = policy.params
    floor, affine = policy.floor()
    weights = [float(w) for w in p.get("restart_weights", [1.0])]
    if affine and any(w != 1.0 for w in weights):
        raise policy.refuse(
            "restart_weights",
            "MMEngine's CosineRestartLR restarts at weight * lr, MMCV at floor + weight * (lr - floor): with a "
            "nonzero floor the weights other than 1 give other values",
        )
    periods = [int(v) for v in p["periods"]]
    regular = [
        policy.entry(
            "CosineRestart", periods=periods, restart_weights=weights, **floor, begin=0, end=max(sum(periods), 1)
        )
    ]
    return _with_warmup(policy, regular, policy.in_iterations(1), affine)


def _refused(why: str) -> Callable[[_Policy], list[dict[str, Any]]]:
    def refuse(policy: _Policy) -> list[dict[str, Any]]:
        raise policy.refuse("name", why)

    return refuse


MMCV_POLICIES: dict[str, Callable[[_Policy], list[dict[str, Any]]]] = {
    "mmcv_fixed": _fixed,
    "mmcv_step": _step,
    "mmcv_exp": _exp,
    "mmcv_poly": _poly,
    "mmcv_cosine_annealing": _cosine,
    "mmcv_linear_annealing": _linear,
    "mmcv_flat_cosine_annealing": _flat_cosine,
    "mmcv_step_fix_cosine_annealing": _step_fix_cosine,
    "mmcv_cosine_restart": _cosine_restart,
    "mmcv_momentum_step": _step,
    "mmcv_momentum_cosine_annealing": _cosine,
    "mmcv_momentum_linear_annealing": _linear,
    "mmcv_inv": _refused("MMCV's Inv policy (lr * (1 + gamma * p) ** -power) has no MMEngine scheduler"),
    "mmcv_cyclic": _refused("MMCV's Cyclic policy has no MMEngine scheduler"),
    "mmcv_momentum_cyclic": _refused("MMCV's Cyclic momentum policy has no MMEngine scheduler"),
    "mmcv_one_cycle": _refused(
        "MMCV's OneCycle policy sets the lr and the momentum together; MMEngine's OneCycleLR does not move the "
        "momentum, so it is not written"
    ),
    "mmcv_momentum_one_cycle": _refused("MMCV's OneCycle momentum policy has no MMEngine scheduler"),
    "mmcv_yolox": _refused(
        "MMDetection's YOLOX policy (quadratic warmup, cosine, fixed final epochs computed together) has no "
        "MMEngine scheduler chain giving the same values"
    ),
    "mmcv_cosine_annealing_cooldown": _refused(
        "MMClassification's CosineAnnealingCooldown policy has no MMEngine scheduler"
    ),
}
"""The MMCV 1.x policies (their schedule names) and how each is written, or why it is not."""


# ----------------------------------------------------------------------------- the check


def _bases(option: str, recipe: Recipe) -> list[float]:
    kwargs = recipe.optimizer.kwargs
    value = kwargs.get(option)
    if option == "momentum" and value is None and isinstance(kwargs.get("betas"), list | tuple):
        value = kwargs["betas"][0]
    base = float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value else 1.0
    return [base, base * 0.37]


def _check_values(
    option: str,
    schedule: ScheduleConfig,
    entries: list[dict[str, Any]],
    run: _Run,
    recipe: Recipe,
    registry: RegistryView,
    path: str,
) -> None:
    """The written schedulers give the recipe's values at every iteration of the run, or a ConfigError."""
    if schedule.name == "mmengine" or run.total is None:
        return
    clock = run.clock(path)
    steps = torch.arange(math.ceil(clock.total_steps or 0), dtype=torch.float64)
    written = ScheduleConfig("mmengine", MMEngineSchedule(entries), "step") if entries else None
    for base in _bases(option, recipe):
        expected = build_schedule(schedule, clock, registry, base=base, path=path).values(steps)
        if written is None:  # no scheduler: the group keeps its value
            got = torch.full_like(steps, base)
        else:
            got = build_schedule(written, clock, registry, base=base, path=path).values(steps)
        gap = (expected.to(torch.float64) - got.to(torch.float64)).abs()
        bad = torch.nonzero(gap > TOLERANCE * max(abs(base), 1e-12)).flatten()
        if bad.numel():
            at = int(bad[0])
            raise ConfigError(
                f"no MMEngine scheduler chain gives this schedule's values: at iteration {at} it is "
                f"{float(expected[at])!r}, MMEngine's schedulers would give {float(got[at])!r}",
                path,
            )
