"""Param-group rules -> the fewest param groups.

Rules apply in order to every trainable parameter; each matching rule writes its
options (later rules win, per option). An option is either *fixed* (``weight_decay:
0``) or *scaled* (``lr_mult: 10``: ten times the optimizer's lr and its schedule).
Parameters that end up with equal options share one group, so a ResNet with no decay
on norms and biases and a 10x head gets three or four groups, not one per tensor.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from optiplug.errors import ConfigError, OptiplugWarning, join_path
from optiplug.plugin_system.records import ParamInfo, RuleMatcher
from optiplug.recipe.model import RuleConfig, ScheduleConfig

if TYPE_CHECKING:
    from optiplug.plugin_system.catalogues import Registry

MULT_ALIASES = {"decay": "weight_decay"}


def option_of(key: str) -> tuple[str, bool]:
    """``("lr", True)`` for ``lr_mult``; ``("weight_decay", True)`` for ``decay_mult``; else ``(key, False)``."""
    if key.endswith("_mult"):
        base = key[: -len("_mult")]
        return MULT_ALIASES.get(base, base), True
    return key, False


@attrs.frozen
class Setting:
    """One option of one group: a fixed value, or a multiple of the optimizer's value."""

    value: Any
    scaled: bool = False
    origin: str = attrs.field(default="", eq=False)


@attrs.define
class GroupPlan:
    """A param group before the optimizer exists: its parameters, options and origin."""

    params: list[nn.Parameter]
    names: list[str]
    settings: dict[str, Setting]
    schedules: dict[str, ScheduleConfig]
    rules: list[str]

    @property
    def elements(self) -> int:
        """Number of scalar elements in the group."""
        return sum(p.numel() for p in self.params)


def param_infos(model: Any) -> list[ParamInfo]:
    """Every trainable parameter once, with its name and owning module.

    ``model`` is an ``nn.Module`` (a DDP / DataParallel wrapper is looked through),
    or an iterable of parameters or of ``(name, parameter)`` pairs.
    """
    if isinstance(model, nn.Module):
        model = (
            getattr(model, "module", model)
            if isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel)
            else model
        )
        return _module_infos(model)
    if isinstance(model, torch.Tensor):
        raise ConfigError("expected a model or an iterable of parameters, got a single tensor; wrap it in a list")
    try:
        items = list(model)
    except TypeError:
        raise ConfigError(f"expected an nn.Module or an iterable of parameters, got {type(model).__name__}") from None
    infos, seen = [], set()
    for i, item in enumerate(items):
        name, param = item if isinstance(item, tuple) and len(item) == 2 else (f"param_{i}", item)
        if isinstance(param, dict):
            raise ConfigError("pass the model or its parameters; param-group dicts are built by optiplug from rules")
        if not isinstance(param, torch.Tensor):
            raise ConfigError(f"item {i} of the parameters is a {type(param).__name__}, not a tensor")
        if id(param) not in seen and param.requires_grad:
            seen.add(id(param))
            infos.append(ParamInfo(str(name), param))  # type: ignore[arg-type]
    return infos


def _module_infos(model: nn.Module) -> list[ParamInfo]:
    infos, seen = [], set()
    for module_name, module in model.named_modules():
        for leaf, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            if param.requires_grad:
                name = f"{module_name}.{leaf}" if module_name else leaf
                infos.append(ParamInfo(name, param, module, module_name, model))
    return infos


@attrs.frozen
class CompiledRule:
    """A rule ready to match: its config, compiled matcher, label, and its ``set`` resolved once."""

    config: RuleConfig
    matcher: RuleMatcher
    label: str
    path: str
    settings: tuple[tuple[str, Setting], ...] = ()


def compile_rules(rules: Iterable[RuleConfig], registry: Registry, path: str = "rules") -> list[CompiledRule]:
    """Compile every rule's matcher once (a bad pattern is a ConfigError at its path)."""
    compiled = []
    for i, rule in enumerate(rules):
        rule_path = join_path(path, i)
        spec = registry.rules.get(rule.kind, join_path(rule_path, "kind"))
        try:
            matcher = spec.matcher(rule.params)
        except ConfigError as exc:
            raise exc.under(rule_path) from None
        label = rule.label or _describe(rule)
        settings = tuple(settings_of(rule.set, join_path(rule_path, "set")).items())
        compiled.append(CompiledRule(rule, matcher, label, rule_path, settings))
    return compiled


def _describe(rule: RuleConfig) -> str:
    if rule.params is None:
        return rule.kind
    fields = ", ".join(f"{k}={v!r}" for k, v in attrs.asdict(rule.params).items() if v not in (None, [], {}))
    return f"{rule.kind}({fields})"


Outcomes = dict[int, Mapping[str, Any]]
"""The options matchers returned (rule index -> mapping), for the rules that returned some."""


def plan_groups(model: Any, rules: Iterable[RuleConfig], registry: Registry, path: str = "rules") -> list[GroupPlan]:
    """The fewest groups for ``model`` under ``rules``, in order of first parameter.

    Each rule's matcher is called once per parameter. Parameters matched by the same
    rules (none of which returned options of its own) have the same options, so their
    group is found from the matched rules alone.
    """
    infos = param_infos(model)
    if not infos:
        raise ConfigError("the model has no trainable parameters (all are frozen or there are none)")
    compiled = compile_rules(rules, registry, path)
    hits = [0] * len(compiled)
    groups: dict[Any, GroupPlan] = {}
    keys: dict[tuple[int, ...], Any] = {}
    labelled: set[tuple[Any, tuple[int, ...]]] = set()
    for info in infos:
        matched, outcomes = _match(info, compiled)
        key = None if outcomes else keys.get(matched)
        if key is None:
            settings, schedules = _resolve(matched, outcomes, compiled)
            key = (_freeze(settings), tuple(sorted((k, repr(v)) for k, v in schedules.items())))
            if key not in groups:
                groups[key] = GroupPlan([], [], settings, schedules, [])
            if not outcomes:
                keys[matched] = key
        group = groups[key]
        group.params.append(info.param)
        group.names.append(info.name)
        if (key, matched) not in labelled:
            labelled.add((key, matched))
            group.rules.extend(label for label in (compiled[i].label for i in matched) if label not in group.rules)
        for i in matched:
            hits[i] += 1
    for rule, count in zip(compiled, hits, strict=True):
        if count == 0:
            warnings.warn(f"{rule.path} ({rule.label}) matches no trainable parameter", OptiplugWarning, stacklevel=3)
    return list(groups.values())


def _match(info: ParamInfo, compiled: list[CompiledRule]) -> tuple[tuple[int, ...], Outcomes]:
    """The indices of the rules that match ``info``, and the options those that returned some gave."""
    matched = []
    outcomes: Outcomes = {}
    for i, rule in enumerate(compiled):
        try:
            outcome = rule.matcher(info)
        except ConfigError as exc:
            raise exc.under(rule.path) from None
        if outcome:
            matched.append(i)
            if isinstance(outcome, Mapping):
                outcomes[i] = outcome
    return tuple(matched), outcomes


def _resolve(
    matched: tuple[int, ...], outcomes: Outcomes, compiled: list[CompiledRule]
) -> tuple[dict[str, Setting], dict[str, ScheduleConfig]]:
    """The options and schedule overrides of a parameter the rules ``matched`` (in order; later rules win)."""
    settings: dict[str, Setting] = {}
    schedules: dict[str, ScheduleConfig] = {}
    for i in matched:
        rule = compiled[i]
        if i in outcomes:
            settings.update(settings_of(outcomes[i], rule.path))
        settings.update(rule.settings)
        schedules.update(rule.config.schedules)
    return settings, schedules


def settings_of(options: Mapping[str, Any], origin: str) -> dict[str, Setting]:
    """A rule's options as settings (``lr_mult`` -> a scaled ``lr``), each remembering its config path."""
    out = {}
    for key, value in options.items():
        option, scaled = option_of(key)
        out[option] = Setting(value, scaled, join_path(origin, key))
    return out


def _freeze(settings: Mapping[str, Setting]) -> tuple[tuple[str, bool, str], ...]:
    return tuple(sorted((k, s.scaled, _canonical(s.value)) for k, s in settings.items()))


def _canonical(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)
