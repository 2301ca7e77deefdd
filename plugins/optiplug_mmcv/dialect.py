"""The MMCV 1.x / MMSelfSup 0.x config dialect: ``optimizer=dict(type=...)`` and its companions.

Read keys: ``optimizer`` (``type``, ``paramwise_options`` or ``paramwise_cfg``,
``constructor``, every other key for the optimizer), ``optimizer_config``, ``lr_config``,
``momentum_config``, ``runner`` and ``total_epochs``. Every other top-level key (model,
data, log_config, ...) is left alone. The result is a canonical :class:`~optiplug.Recipe`
whose numbers are MMCV's: the same optimizer, param groups and values at every iteration.

The dialect only translates. What only MMCV's keys can say (an unknown runner, a
``by_epoch`` hook with a warmup under an IterBasedRunner, where MMCV fails, an
EpochBasedRunner without the iterations per epoch, a ``momentum_config`` for an
optimizer with neither momentum nor betas) is refused here; a key MMCV ignores is a
warning (:mod:`optiplug_mmcv.ignored_keys`); everything else is checked once by ``build()``, whose error paths
:data:`PATHS` renames to this dialect's keys (``schedules.lr`` -> ``lr_config``).
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Mapping
from typing import Any

from optiplug.plugin import (
    ConfigError,
    DialectContext,
    OptimizerConfig,
    OptiplugWarning,
    Recipe,
    RegistryView,
    RuleConfig,
    RunConfig,
    ScheduleConfig,
    did_you_mean,
    structure_config,
)
from optiplug_mmcv import ignored_keys
from optiplug_mmcv.fp16 import fp16_path, loss_scale_config
from optiplug_mmcv.layer_decay import MMSegLayerDecay, MMSelfSupFinetune
from optiplug_mmcv.optimizer_config import fp16_hook_config, read_frozen_layers, read_optimizer_config
from optiplug_mmcv.paramwise import PARAMWISE_CFG_KEYS, ParamwiseCfg, check_decay_base, paramwise_options_rules
from optiplug_mmcv.runner import RunLength, hook_defaults, read_run_length

LR_POLICIES = {
    "Fixed": "mmcv_fixed",
    "Step": "mmcv_step",
    "Exp": "mmcv_exp",
    "Poly": "mmcv_poly",
    "Inv": "mmcv_inv",
    "CosineAnnealing": "mmcv_cosine_annealing",
    "LinearAnnealing": "mmcv_linear_annealing",
    "FlatCosineAnnealing": "mmcv_flat_cosine_annealing",
    "StepFixCosineAnnealing": "mmcv_step_fix_cosine_annealing",
    "CosineRestart": "mmcv_cosine_restart",
    "Cyclic": "mmcv_cyclic",
    "OneCycle": "mmcv_one_cycle",
    "YOLOX": "mmcv_yolox",
    "CosineAnnealingCooldown": "mmcv_cosine_annealing_cooldown",
}
MOMENTUM_POLICIES = {
    "Step": "mmcv_momentum_step",
    "CosineAnnealing": "mmcv_momentum_cosine_annealing",
    "LinearAnnealing": "mmcv_momentum_linear_annealing",
    "Cyclic": "mmcv_momentum_cyclic",
    "OneCycle": "mmcv_momentum_one_cycle",
}
HOOK_CONFIGS = {"lr": ("lr_config", LR_POLICIES), "momentum": ("momentum_config", MOMENTUM_POLICIES)}
PATHS = {
    "optimizer": "optimizer",
    "optimizer.name": "optimizer.type",
    "schedules.lr": "lr_config",
    "schedules.momentum": "momentum_config",
    "schedules.lr.name": "lr_config.policy",
    "schedules.momentum.name": "momentum_config.policy",
    "clip": "optimizer_config.grad_clip",
    "accumulation": "optimizer_config",
    # a layer-decay constructor is the one rule, rules[0]: its fields' errors (the matcher's at build) in MMCV keys
    "rules[0].backbone": "optimizer.constructor",
    "rules[0].num_layers": "optimizer.paramwise_cfg.num_layers",
    "rules[0].decay_rate": "optimizer.paramwise_cfg.decay_rate",
    "rules[0].decay_type": "optimizer.paramwise_cfg.decay_type",
    "rules[0].model_type": "optimizer.model_type",
    "rules[0].layer_decay": "optimizer.layer_decay",
    "rules[0].paramwise_options": "optimizer.paramwise_options",
    "freeze": "optimizer_config.frozen_layers_cfg",
    "loss_scale": "optimizer_config.loss_scale",
    # the default constructor's paramwise_cfg is the one rule with these fields (mmcv_paramwise)
    **{f"rules[0].{key}": f"optimizer.paramwise_cfg.{key}" for key in PARAMWISE_CFG_KEYS},
}
"""Recipe paths in build()'s errors -> this dialect's keys (the longest prefix wins)."""
OPTIMIZER_ONLY_KEYS = ("type", "constructor", "paramwise_options", "paramwise_cfg")
DEFAULT_CONSTRUCTOR = "DefaultOptimizerConstructor"
MMSEG_CONSTRUCTORS = ("LearningRateDecayOptimizerConstructor", "LayerDecayOptimizerConstructor")
FINETUNE_CONSTRUCTOR = "TransformerFinetuneConstructor"
NOT_HOOK_ARGUMENTS = ("type", "name", "update_interval")


def detect(mapping: Mapping[str, Any]) -> bool:
    """An MMCV config has ``optimizer`` as a dict with a ``type``."""
    optimizer = mapping.get("optimizer")
    return isinstance(optimizer, Mapping) and "type" in optimizer


def translate(config: Mapping[str, Any], context: DialectContext) -> Recipe:
    """The canonical recipe of an MMCV / MMSelfSup config."""
    registry = context.registry
    ignored_keys.warn_top_level(config)
    ignored_keys.warn_custom_imports(config.get("custom_imports"))
    ignored_keys.warn_custom_hooks(config.get("custom_hooks"))
    optimizer, rules = read_optimizer(config["optimizer"], registry)
    run = read_run_length(config, context)
    schedules = {}
    for option, (key, policies) in HOOK_CONFIGS.items():
        schedule = read_schedule(config.get(key), key, policies, registry, run)
        if schedule is not None:
            schedules[option] = schedule
    hook = fp16_hook_config(config)
    clip, accumulation = read_optimizer_config(hook)
    loss_scale = loss_scale_config(hook, registry, fp16_path(config))
    if "momentum" in schedules:
        _check_momentum_target(optimizer, registry)
    if schedules or accumulation.steps > 1:
        _check_epochs_measurable(run, context)
    return Recipe(
        optimizer=optimizer,
        rules=rules,
        schedules=schedules,
        clip=clip,
        accumulation=accumulation,
        freeze=read_frozen_layers(hook, registry),
        loss_scale=loss_scale,
        run=RunConfig(num_epochs=run.max_epochs, total_steps=run.max_iters),
    )


def read_optimizer(value: Mapping[str, Any], registry: RegistryView) -> tuple[OptimizerConfig, list[RuleConfig]]:
    """The optimizer (``type`` and its keyword arguments) and the param rules of ``optimizer``."""
    spec = registry.optimizers.get(value["type"], "optimizer.type")
    constructor = value.get("constructor", DEFAULT_CONSTRUCTOR)
    known = (DEFAULT_CONSTRUCTOR, *MMSEG_CONSTRUCTORS, FINETUNE_CONSTRUCTOR)
    if constructor not in known:
        raise ConfigError(
            f"unknown constructor {constructor!r}{did_you_mean(str(constructor), known)}; known: {', '.join(known)}",
            "optimizer.constructor",
        )
    kwargs = {str(k): v for k, v in value.items() if k not in OPTIMIZER_ONLY_KEYS}
    options, paramwise_cfg = value.get("paramwise_options"), value.get("paramwise_cfg")
    if options is not None and paramwise_cfg is not None:
        raise ConfigError(
            "give paramwise_options (MMSelfSup's regexes) or paramwise_cfg (MMCV's rules), not both", "optimizer"
        )
    if constructor == FINETUNE_CONSTRUCTOR:
        finetune: dict[str, Any] = {key: kwargs.pop(key) for key in ("layer_decay", "model_type") if key in kwargs}
        return OptimizerConfig(spec.name, kwargs), [finetune_rule(options, finetune, kwargs, registry)]
    if constructor in MMSEG_CONSTRUCTORS:
        return OptimizerConfig(spec.name, kwargs), [mmseg_rule(constructor, paramwise_cfg, kwargs, registry)]
    rules = paramwise_options_rules(options, kwargs, registry, "optimizer.paramwise_options")
    rules += paramwise_cfg_rules(paramwise_cfg, kwargs, registry)
    return OptimizerConfig(spec.name, kwargs), rules


def mmseg_rule(constructor: str, value: Any, optimizer: Mapping[str, Any], registry: RegistryView) -> RuleConfig:
    """MMSegmentation's layer-decay constructors as one ``mmseg_layer_decay`` rule."""
    path = "optimizer.paramwise_cfg"
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{constructor} needs paramwise_cfg=dict(num_layers=..., decay_rate=...), got {value!r}", path
        )
    cfg = dict(value)
    if constructor == "LayerDecayOptimizerConstructor":
        if "layer_decay_rate" not in cfg:
            raise ConfigError(f"{constructor} needs layer_decay_rate (MMSegmentation pops it: KeyError)", path)
        cfg["decay_type"] = "layer_wise_vit"
        cfg["decay_rate"] = cfg.pop("layer_decay_rate")
    known = ("num_layers", "decay_rate", "decay_type", *PARAMWISE_CFG_KEYS)
    cfg = ignored_keys.known_paramwise_cfg(cfg, known, path)
    for key in PARAMWISE_CFG_KEYS:
        if key in cfg:
            ignored_keys.warn(f"{path}.{key}: {constructor} sets every group itself and never reads it")
            del cfg[key]
    cfg["weight_decay"] = optimizer.get("weight_decay")
    try:
        config = structure_config(cfg, MMSegLayerDecay, registry, path)
    except ConfigError as exc:
        if constructor != "LayerDecayOptimizerConstructor":
            raise
        renamed = {f"{path}.decay_rate": f"{path}.layer_decay_rate"}  # the key the user wrote
        raise type(exc)("", items=[(renamed.get(p, p), m) for p, m in exc.items]) from None
    return RuleConfig("mmseg_layer_decay", config, {}, {}, f"paramwise_cfg ({constructor})")


def finetune_rule(
    options: Any, finetune: Mapping[str, Any], optimizer: Mapping[str, Any], registry: RegistryView
) -> RuleConfig:
    """MMSelfSup's TransformerFinetuneConstructor as one ``mmselfsup_finetune`` rule."""
    path = "optimizer.paramwise_options"
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"expected a dict of regex -> options, got {options!r}", path)
    checked = paramwise_options_rules(options, optimizer, registry, path)  # the same checks as without layer decay
    regexes = {rule.params.pattern: dict(rule.set) for rule in checked}
    config = structure_config({**finetune, "paramwise_options": regexes}, MMSelfSupFinetune, registry, "optimizer")
    return RuleConfig("mmselfsup_finetune", config, {}, {}, f"{FINETUNE_CONSTRUCTOR} (paramwise_options, layer_decay)")


def paramwise_cfg_rules(value: Any, optimizer: Mapping[str, Any], registry: RegistryView) -> list[RuleConfig]:
    """MMCV's ``paramwise_cfg`` as one ``mmcv_paramwise`` rule (none when it changes nothing)."""
    path = "optimizer.paramwise_cfg"
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected None or a dict, got {value!r}", path)
    known = ignored_keys.known_paramwise_cfg(value, PARAMWISE_CFG_KEYS, path)
    config = structure_config(known, ParamwiseCfg, registry, path)
    check_decay_base(config, optimizer, path)
    return [] if config.is_empty() else [RuleConfig("mmcv_paramwise", config, {}, {}, "paramwise_cfg")]


def read_schedule(
    value: Any, key: str, policies: Mapping[str, str], registry: RegistryView, run: RunLength
) -> ScheduleConfig | None:
    """``lr_config`` / ``momentum_config`` as the schedule of its policy (None for None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "policy" not in value:
        raise ConfigError(f"expected None or a dict with a policy, got {value!r}", key)
    name = policies[policy_name(value["policy"], policies, f"{key}.policy")]
    for extra in NOT_HOOK_ARGUMENTS:
        if extra in value:
            raise ConfigError(
                f"not an argument of MMCV's {key} hooks; {key} is the policy and its arguments", f"{key}.{extra}"
            )
    rest = {k: v for k, v in hook_defaults(value, key, run).items() if k != "policy"}
    schedule = structure_config({"name": name, **rest}, ScheduleConfig, registry, key)
    return _moved_by_runner(schedule, run, key)


def policy_name(value: Any, policies: Mapping[str, str], path: str) -> str:
    """The policy as MMCV spells it, matched case-insensitively (``'cosineannealing'`` works)."""
    if not isinstance(value, str):
        raise ConfigError(f"expected a policy name, got {value!r}", path)
    by_lower = {name.lower(): name for name in policies}
    found = by_lower.get(value.lower())
    if found is None:
        close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
        hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        raise ConfigError(f"unknown policy {value!r}{hint}; known: {', '.join(policies)}", path)
    return found


def _moved_by_runner(schedule: ScheduleConfig, run: RunLength, key: str) -> ScheduleConfig | None:
    """The schedule an IterBasedRunner runs: none for a ``by_epoch`` hook, which it never moves.

    An IterBasedRunner calls no ``before_train_epoch``, so a ``by_epoch`` hook keeps the
    optimizer's value (MMCV raises at the first iteration when such a hook has a warmup).
    """
    params = schedule.params
    if not run.iter_based:
        return schedule
    if getattr(params, "warmup_by_epoch", False) and getattr(params, "warmup", None) is not None:
        raise ConfigError("an IterBasedRunner has no epochs; give warmup_iters in iterations", f"{key}.warmup_by_epoch")
    if not getattr(params, "by_epoch", False):
        return schedule
    if getattr(params, "warmup", None) is not None:
        raise ConfigError(
            "an IterBasedRunner never starts a by_epoch hook's epoch, so MMCV fails at the first warmup iteration; "
            "set by_epoch=False",
            f"{key}.by_epoch",
        )
    option = "momentum" if key == "momentum_config" else "lr"
    warnings.warn(
        f"{key}: an IterBasedRunner never moves a by_epoch hook (it has no epochs), so MMCV keeps the optimizer's "
        f"{option} throughout, and so does optiplug; set by_epoch=False to schedule it",
        OptiplugWarning,
        stacklevel=2,
    )
    return None


def _check_momentum_target(optimizer: OptimizerConfig, registry: RegistryView) -> None:
    """MMCV's momentum hooks write ``momentum``, else ``betas[0]``: the optimizer must take one of them.

    Read from the optimizer's signature and the config's arguments; an optimizer without
    a readable signature is left to build().
    """
    factory = registry.optimizers.get(optimizer.name, "optimizer.type").factory
    try:
        arguments = set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return
    if not {"momentum", "betas"} & (arguments | set(optimizer.kwargs)):
        raise ConfigError(f"{optimizer.name} has neither momentum nor betas to schedule", "momentum_config")


def _check_epochs_measurable(run: RunLength, context: DialectContext) -> None:
    """An EpochBasedRunner's schedules and accumulation need its iterations per epoch, which only build() gives."""
    if run.max_epochs is not None and context.steps_per_epoch is None:
        raise ConfigError(
            f"the EpochBasedRunner runs {run.max_epochs} epochs: pass steps_per_epoch, its iterations per epoch "
            "(len(data_loader)): build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N",
            "runner",
        )
