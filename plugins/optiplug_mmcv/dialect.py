"""The MMCV 1.x / MMSelfSup 0.x config dialect: ``optimizer=dict(type=...)`` and its companions.

Read keys: ``optimizer`` (``type``, ``paramwise_options`` or ``paramwise_cfg``,
``constructor``, every other key for the optimizer), ``optimizer_config``, ``lr_config``,
``momentum_config``, ``runner`` and ``total_epochs``. Every other top-level key (model,
data, log_config, ...) is left alone. The result is a canonical :class:`~optiplug.Recipe`
whose numbers are MMCV's (shared/spec/mmcv.md; decisions M1-M9).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from optiplug import ConfigError, DialectContext, OptimizerConfig, Recipe, RuleConfig, RunConfig, ScheduleConfig
from optiplug.engine.optimizer_options import optimizer_arguments
from optiplug.engine.run_figures import resolve_clock
from optiplug.engine.schedules import build_schedule
from optiplug.engine.structuring import converter_for
from optiplug.plugin_system.catalogues import Registry
from optiplug.recipe.strict_converter import structure
from optiplug_mmcv.optimizer_config import read_optimizer_config
from optiplug_mmcv.paramwise import ParamwiseCfg, check_decay_base, paramwise_options_rules
from optiplug_mmcv.runner import RunLength, read_run_length

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
}
MOMENTUM_POLICIES = {
    "Step": "mmcv_momentum_step",
    "CosineAnnealing": "mmcv_momentum_cosine_annealing",
    "LinearAnnealing": "mmcv_momentum_linear_annealing",
    "Cyclic": "mmcv_momentum_cyclic",
    "OneCycle": "mmcv_momentum_one_cycle",
}
PROVIDERS = {"mmcv_cyclic": "cyclic", "mmcv_one_cycle": "cyclic", "mmcv_cosine_restart": "restarts"}
HOOK_CONFIGS = {"lr": ("lr_config", LR_POLICIES), "momentum": ("momentum_config", MOMENTUM_POLICIES)}
OPTIMIZER_ONLY_KEYS = ("type", "constructor", "paramwise_options", "paramwise_cfg")
DEFAULT_CONSTRUCTOR = "DefaultOptimizerConstructor"
NOT_HOOK_ARGUMENTS = ("type", "name", "update_interval")


def detect(mapping: Mapping[str, Any]) -> bool:
    """An MMCV config has ``optimizer`` as a dict with a ``type``."""
    optimizer = mapping.get("optimizer")
    return isinstance(optimizer, Mapping) and "type" in optimizer


def translate(config: Mapping[str, Any], context: DialectContext) -> Recipe:
    """The canonical recipe of an MMCV / MMSelfSup config."""
    registry = context.registry
    optimizer, rules = read_optimizer(config["optimizer"], registry)
    run = read_run_length(config, context)
    schedules = {}
    for option, (key, policies) in HOOK_CONFIGS.items():
        schedule = read_schedule(config.get(key), key, policies, registry, run)
        if schedule is not None:
            schedules[option] = schedule
    clip, accumulation = read_optimizer_config(config.get("optimizer_config"))
    recipe = Recipe(
        optimizer=optimizer,
        rules=rules,
        schedules=schedules,
        clip=clip,
        accumulation=accumulation,
        run=RunConfig(num_epochs=run.max_epochs, total_steps=run.max_iters),
    )
    _check_momentum_target(recipe, registry)
    _check_run(recipe, run, context)
    return recipe


def read_optimizer(value: Mapping[str, Any], registry: Registry) -> tuple[OptimizerConfig, list[RuleConfig]]:
    """The optimizer (``type`` and its keyword arguments) and the param rules of ``optimizer``."""
    spec = registry.optimizers.get(value["type"], "optimizer.type")
    constructor = value.get("constructor", DEFAULT_CONSTRUCTOR)
    if constructor != DEFAULT_CONSTRUCTOR:
        raise ConfigError(f"only {DEFAULT_CONSTRUCTOR} is supported, got {constructor!r}", "optimizer.constructor")
    kwargs = {str(k): v for k, v in value.items() if k not in OPTIMIZER_ONLY_KEYS}
    optimizer_arguments(spec.factory, kwargs)
    options, paramwise_cfg = value.get("paramwise_options"), value.get("paramwise_cfg")
    if options is not None and paramwise_cfg is not None:
        raise ConfigError(
            "give paramwise_options (MMSelfSup's regexes) or paramwise_cfg (MMCV's rules), not both", "optimizer"
        )
    rules = paramwise_options_rules(options, kwargs, "optimizer.paramwise_options")
    rules += paramwise_cfg_rules(paramwise_cfg, kwargs, registry)
    return OptimizerConfig(spec.name, kwargs), rules


def paramwise_cfg_rules(value: Any, optimizer: Mapping[str, Any], registry: Registry) -> list[RuleConfig]:
    """MMCV's ``paramwise_cfg`` as one ``mmcv_paramwise`` rule (none when it changes nothing)."""
    path = "optimizer.paramwise_cfg"
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected None or a dict, got {value!r}", path)
    config = structure(converter_for(registry), dict(value), ParamwiseCfg, path)
    check_decay_base(config, optimizer, path)
    return [] if config.is_empty() else [RuleConfig("mmcv_paramwise", config, {}, {}, "paramwise_cfg")]


def read_schedule(
    value: Any, key: str, policies: Mapping[str, str], registry: Registry, run: RunLength
) -> ScheduleConfig | None:
    """``lr_config`` / ``momentum_config`` as the schedule of its policy (None for None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "policy" not in value:
        raise ConfigError(f"expected None or a dict with a policy, got {value!r}", key)
    name = policies[policy_name(value["policy"], policies, f"{key}.policy")]
    if name not in registry.schedules:
        plugin = PROVIDERS.get(name, "mmcv")
        raise ConfigError(f"this policy is provided by the plugin {plugin!r}, which is not loaded", f"{key}.policy")
    for extra in NOT_HOOK_ARGUMENTS:
        if extra in value:
            raise ConfigError(
                f"not an argument of MMCV's {key} hooks; {key} is the policy and its arguments", f"{key}.{extra}"
            )
    rest = {k: v for k, v in value.items() if k != "policy"}
    schedule = structure(converter_for(registry), {"name": name, **rest}, ScheduleConfig, key)
    _check_runner(schedule.params, run, key)
    return schedule


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


def _check_runner(params: Any, run: RunLength, key: str) -> None:
    if not run.iter_based:
        return
    if getattr(params, "by_epoch", False):
        raise ConfigError(
            "an IterBasedRunner has no epochs, so MMCV never moves a by_epoch hook there; set by_epoch=False "
            "(it defaults to True)",
            f"{key}.by_epoch",
        )
    if getattr(params, "warmup_by_epoch", False):
        raise ConfigError("an IterBasedRunner has no epochs; give warmup_iters in iterations", f"{key}.warmup_by_epoch")


def _check_momentum_target(recipe: Recipe, registry: Registry) -> None:
    if "momentum" not in recipe.schedules:
        return
    spec = registry.optimizers.get(recipe.optimizer.name, "optimizer.type")
    _, defaults = optimizer_arguments(spec.factory, recipe.optimizer.kwargs)
    if "momentum" not in defaults and "betas" not in defaults:
        raise ConfigError(f"{spec.name} has neither momentum nor betas to schedule", "momentum_config")


def _check_run(recipe: Recipe, run: RunLength, context: DialectContext) -> None:
    """Refuse what needs the run's length early, with the MMCV keys in the message."""
    if not recipe.schedules and recipe.accumulation.steps == 1:
        return
    if run.max_epochs is not None and context.steps_per_epoch is None:
        raise ConfigError(
            f"the EpochBasedRunner runs {run.max_epochs} epochs: pass steps_per_epoch, its iterations per epoch "
            "(len(data_loader)): build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N",
            "runner",
        )
    clock = resolve_clock(recipe, context.run)
    for option, schedule in recipe.schedules.items():
        build_schedule(schedule, clock, context.registry, path=HOOK_CONFIGS[option][0])
