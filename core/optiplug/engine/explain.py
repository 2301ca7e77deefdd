"""Why each parameter has the options it has: the rules that matched it, and a lint of the rules.

For every trainable parameter, :func:`explain` lists the rules that matched it, in order,
what each wrote, which rule each option finally came from (rules apply in order and the
last one to write an option wins), the group and algorithm it ends in, and its option
values before update 0 and before the last update. The lint finds what users of
MMEngine, timm and MAE-style code keep reporting, each :class:`Finding` naming the
config path:

- ``no-match``: a rule that matches no trainable parameter;
- ``shadowed``: a rule whose every option, on every parameter it matches, is overwritten
  by later rules (it has no effect);
- ``overridden``: one option of a rule (a multiplier, layer decay's ``lr_mult``)
  overwritten by later rules on every parameter the rule matches;
- ``same-option``: a rule writing one option twice (``lr`` and ``lr_mult``): only the last is read;
- ``unread-mult``: a multiplier of an option that is 0 in the optimizer and not scheduled;
- ``unscheduled``: a rule fixing an option (``lr: 0.01``) that a schedule drives for the
  other parameters: the parameters it sets hold that value all run (``lr_mult`` keeps the schedule);
- ``uniform``: a rule kind that computes options per parameter (``layer_decay``) giving
  every parameter the same values (the model's names do not follow its preset);
- ``decay-1d``: 1-D parameters (biases, norm scales) with the optimizer's weight decay
  (no rule sets theirs);
- ``decay-norm``: the same for norm layers' parameters under decoupled weight decay (AdamW);
- ``frozen``: parameters with ``requires_grad=False`` (in no group);
- ``shared``: one parameter registered under two names (tied weights): it is grouped by
  its first name, and rules that match only the other names do not apply to it.

>>> report = optiplug.build("recipe.yaml", model).explain(model)
>>> print(report)                     # every parameter, then the findings
>>> [f.code for f in report.findings] # ["decay-1d", ...]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from torch import nn

from optiplug.engine.grouping import CompiledRule, Setting, compile_rules, option_of, param_infos, settings_of
from optiplug.engine.rule_kinds import NORM_TYPES
from optiplug.engine.schedules import metric_state_of
from optiplug.engine.torch_scheduler import option_number
from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.host import get_registry
from optiplug.plugin_system.records import ParamInfo

if TYPE_CHECKING:
    from optiplug.engine.built_result import Built

DECOUPLED_DECAY = frozenset({"adamw", "adamwr", "lion"})
INTERNAL_KEYS = frozenset(
    {"params", "maximize", "foreach", "differentiable", "fused", "capturable", "initial_lr", "decoupled_weight_decay"}
)
FIRST = ("lr", "momentum", "beta1", "beta2", "weight_decay")
LISTED = 4  # names quoted in a finding before "(+N)"


@attrs.frozen
class Finding:
    """One lint finding: a short ``code``, the config (or model) ``path`` it is about, and the message."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.code}]"


@attrs.frozen
class RuleHit:
    """A rule that matched a parameter: what it wrote (``options``) and which of them won."""

    index: int
    path: str
    label: str
    options: Mapping[str, Setting]
    won: tuple[str, ...]


@attrs.frozen
class ParamReport:
    """One parameter: its rules in order, its group, its final options and their values at the start and end."""

    name: str
    shape: tuple[int, ...]
    module_type: str
    group: int
    hits: tuple[RuleHit, ...]
    settings: Mapping[str, Setting]
    start: Mapping[str, Any]
    end: Mapping[str, Any]

    def origin(self, option: str) -> str:
        """Where ``option`` came from: the config path of the winning rule's key, or the optimizer."""
        setting = self.settings.get(option)
        return setting.origin if setting is not None else f"optimizer.{option}"


@attrs.frozen
class Explanation:
    """What :func:`explain` found: the algorithm, every parameter, and the lint findings."""

    algorithm: str
    updates: int | None
    params: tuple[ParamReport, ...]
    findings: tuple[Finding, ...]
    rules: tuple[tuple[str, str], ...] = ()
    """Every rule's config path and label, in order."""
    metric_driven: tuple[str, ...] = ()
    """Options driven by reported metrics (``reduce_on_plateau``) and their schedules: no later reduction shown."""

    def param(self, name: str) -> ParamReport:
        """The report of the parameter called ``name``."""
        for report in self.params:
            if report.name == name:
                return report
        raise KeyError(name)

    def lines(self, only: str | None = None) -> list[str]:
        """The report as text: a block per parameter (those whose name matches the regex ``only``), then the lint."""
        end = "end" if self.updates is None else f"update {self.updates - 1}"
        out = [f"{self.algorithm}: {len(self.params)} parameters; values at update 0 -> {end}"]
        if self.metric_driven:
            out.append(
                f"  {', '.join(self.metric_driven)}: driven by reported metrics; the values at "
                f"{'the end' if self.updates is None else end} hold the reductions reported so far and no later one"
            )
        pattern = re.compile(only) if only else None
        for report in self.params:
            if pattern is None or pattern.search(report.name):
                out += _param_lines(report)
        out.append(f"lint: {len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}")
        out += [f"  warning: {finding}" for finding in self.findings]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _param_lines(report: ParamReport) -> list[str]:
    shape = "x".join(map(str, report.shape)) or "scalar"
    lines = [f"{report.name} ({shape}, {report.module_type}) -> group {report.group}"]
    if not report.hits:
        lines.append("  rules: none matched: the optimizer's options")
    for hit in report.hits:
        wrote = ", ".join(f"{_key(o, s)}={s.value!r}" for o, s in hit.options.items()) or "nothing"
        if hit.won:
            verdict = f"wins {', '.join(hit.won)}"
        elif hit.options:
            verdict = "all overwritten by later rules"
        else:
            verdict = "no options"
        lines.append(f"  {hit.path} {hit.label}: {wrote} ({verdict})")
    ordered = sorted(report.start, key=lambda o: FIRST.index(o) if o in FIRST else len(FIRST))
    values = ", ".join(
        f"{o}={_fmt(report.start[o])}"
        + ("" if report.end.get(o) == report.start[o] else f" -> {_fmt(report.end.get(o))}")
        for o in ordered
    )
    lines.append(f"  ends with: {values}")
    return lines


def _key(option: str, setting: Setting) -> str:
    leaf = setting.origin.rsplit(".", 1)[-1]
    return leaf if leaf.endswith("_mult") else option


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def explain(
    built: Built,
    model: Any,
    *,
    registry: Registry | None = None,
    rename: Callable[[str], str] | None = None,
) -> Explanation:
    """Explain and lint the param groups ``built`` has for ``model`` (the model it was built for).

    ``rename`` maps a recipe path (``rules.2``) to the user's own key (a dialect's), for
    the findings and the origins shown.
    """
    registry = registry or get_registry()
    rename = rename or (lambda path: path)
    infos = param_infos(model)
    compiled = compile_rules(built.recipe.rules, registry)
    group_of = _group_index(built)
    missing = [info.name for info in infos if id(info.param) not in group_of]
    if missing:
        raise ConfigError(f"the model is not the one this Built was made for: {_names(missing)} are in no group")
    hits = [_hits(info, compiled, rename) for info in infos]
    start, end, updates = _values(built)
    reports = tuple(
        ParamReport(
            info.name,
            tuple(info.param.shape),
            type(info.module).__name__ if info.module is not None else "-",
            group_of[id(info.param)],
            rule_hits,
            _winners(rule_hits),
            start[group_of[id(info.param)]],
            end[group_of[id(info.param)]],
        )
        for info, rule_hits in zip(infos, hits, strict=True)
    )
    algorithm = _algorithm(built)
    findings = Lint(built, model, infos, compiled, reports, rename).findings()
    rules = tuple((rename(rule.path), rule.label) for rule in compiled)
    driven = {
        f"{'beta1' if b.into_betas else b.option} ({state.describe()})"
        for b in built.scheduler.bindings
        if (state := metric_state_of(b.table.schedule)) is not None
    }
    return Explanation(algorithm, updates, reports, tuple(findings), rules, tuple(sorted(driven)))


def _group_index(built: Built) -> dict[int, int]:
    return {id(p): i for i, group in enumerate(built.optimizer.param_groups) for p in group["params"]}


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" (+{len(names) - LISTED})" if len(names) > LISTED else "")


def _hits(info: ParamInfo, compiled: list[CompiledRule], rename: Callable[[str], str]) -> tuple[RuleHit, ...]:
    """The rules matching ``info`` in order, each with the options it wrote (as grouping resolves them)."""
    found = []
    for i, rule in enumerate(compiled):
        outcome = rule.matcher(info)
        if not outcome:
            continue
        options: dict[str, Setting] = {}
        if isinstance(outcome, Mapping):
            options.update(settings_of(outcome, rename(rule.path)))
        options.update({o: attrs.evolve(s, origin=rename(s.origin)) for o, s in rule.settings})
        found.append(RuleHit(i, rename(rule.path), rule.label, options, ()))
    won: dict[str, int] = {}
    for position, hit in enumerate(found):
        won.update(dict.fromkeys(hit.options, position))
    return tuple(
        attrs.evolve(hit, won=tuple(o for o, p in won.items() if p == position)) for position, hit in enumerate(found)
    )


def _winners(hits: Sequence[RuleHit]) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for hit in hits:
        settings.update(hit.options)
    return settings


def _values(built: Built) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None]:
    """Each group's options before update 0 and before the last update (scheduled ones from the scheduler's tables)."""
    updates = None if built.clock.total_steps is None else math.ceil(built.clock.total_steps)
    last = None if updates is None else min(updates - 1, int(built.clock.total_steps or 0))
    start: list[dict[str, Any]] = []
    for group in built.optimizer.param_groups:
        options = {k: option_number(v) for k, v in group.items() if k not in INTERNAL_KEYS}
        betas = options.pop("betas", None)
        if isinstance(betas, tuple | list):
            options = {"beta1": float(betas[0]), "beta2": float(betas[1]), **options}
        start.append(options)
    end = [dict(options) for options in start]
    for binding in built.scheduler.bindings:
        option = "beta1" if binding.into_betas else binding.option
        start[binding.group][option] = binding.table[0] * binding.scale
        end[binding.group][option] = math.nan if last is None else binding.table[last] * binding.scale
    return start, end, updates


def _algorithm(built: Built) -> str:
    name = built.recipe.optimizer.name
    wrappers = [w.name for w in built.recipe.wrappers]
    inner = (
        f"{name} ({type(built.optimizer).__name__})" if type(built.optimizer).__name__.lower() != name.lower() else name
    )
    for wrapper in wrappers:
        inner = f"{wrapper}({inner})"
    return f"{inner}, {len(built.optimizer.param_groups)} param groups"


class Lint:
    """The lint checks over one explanation; :meth:`findings` runs them all, in the order of the module docstring."""

    def __init__(
        self,
        built: Built,
        model: Any,
        infos: list[ParamInfo],
        compiled: list[CompiledRule],
        reports: tuple[ParamReport, ...],
        rename: Callable[[str], str],
    ):
        self.built, self.model, self.infos, self.compiled = built, model, infos, compiled
        self.reports, self.rename = reports, rename
        self.by_rule: dict[int, list[tuple[ParamReport, RuleHit]]] = {i: [] for i in range(len(compiled))}
        for report in reports:
            for hit in report.hits:
                self.by_rule[hit.index].append((report, hit))

    def findings(self) -> list[Finding]:
        """Every finding, rule by rule, then the parameters."""
        found: list[Finding] = []
        for i in range(len(self.compiled)):
            found += self._rule(i)
        found += self._decay() + self._frozen() + self._shared()
        return found

    def _rule(self, index: int) -> list[Finding]:
        rule = self.compiled[index]
        path, label = self.rename(rule.path), rule.label
        found = self._same_option(rule, path)
        matched = self.by_rule[index]
        if not matched:
            return [*found, Finding("no-match", path, f"rule {label} matches no trainable parameter")]
        if all(hit.options and not hit.won for _, hit in matched):
            later = sorted({h.path for report, hit in matched for h in report.hits if set(h.won) & set(hit.options)})
            message = (
                f"rule {label} has no effect: on each of the {len(matched)} parameters it matches, "
                f"later rules ({', '.join(later)}) overwrite all its options (later rules win)"
            )
            return [*found, Finding("shadowed", path, message)]
        found += self._overridden(index, path, label, matched)
        found += self._unread_mult(matched, path, label)
        found += self._unscheduled(path, label, matched)
        return found + self._uniform(rule, path, label, matched)

    def _same_option(self, rule: CompiledRule, path: str) -> list[Finding]:
        seen: dict[str, str] = {}
        found = []
        for key in rule.config.set:
            option = option_of(key)[0]
            if option in seen:
                message = f"sets {option} twice ({seen[option]} and {key}): only {key} is read"
                found.append(Finding("same-option", join_path(path, "set"), message))
            seen[option] = key
        return found

    def _overridden(
        self, index: int, path: str, label: str, matched: list[tuple[ParamReport, RuleHit]]
    ) -> list[Finding]:
        found = []
        for option in matched[0][1].options:
            if any(option in hit.won for _, hit in matched):
                continue
            key = _key(option, matched[0][1].options[option])
            winners = sorted({report.origin(option) for report, _ in matched})
            message = (
                f"{key} of rule {label} is never read: later rules set {option} on all "
                f"{len(matched)} parameters it matches ({', '.join(winners)})"
            )
            found.append(Finding("overridden", matched[0][1].options[option].origin, message))
        return found

    def _unread_mult(self, matched: list[tuple[ParamReport, RuleHit]], path: str, label: str) -> list[Finding]:
        base = {**getattr(self.built.optimizer, "defaults", {}), **self.built.recipe.optimizer.kwargs}
        scheduled = set(self.built.recipe.schedules) | {o for r in self.built.recipe.rules for o in r.schedules}
        found = []
        for option, setting in matched[0][1].options.items():
            if setting.scaled and option not in scheduled and base.get(option, None) == 0:
                key = _key(option, setting)
                message = (
                    f"{key} of rule {label} multiplies optimizer.{option}, which is 0 and not scheduled: "
                    f"it changes nothing"
                )
                found.append(Finding("unread-mult", setting.origin, message))
        return found

    def _unscheduled(self, path: str, label: str, matched: list[tuple[ParamReport, RuleHit]]) -> list[Finding]:
        """Fixed values this rule wins with for options a schedule drives elsewhere: they hold still."""
        bound = {(b.group, "beta1" if b.into_betas else b.option) for b in self.built.scheduler.bindings}
        scheduled = {option for _, option in bound} | set(self.built.recipe.schedules)
        held: dict[str, list[str]] = {}
        origins: dict[str, str] = {}
        for report, hit in matched:
            for option in hit.won:
                setting = hit.options[option]
                if not setting.scaled and option in scheduled and (report.group, option) not in bound:
                    held.setdefault(option, []).append(report.name)
                    origins[option] = setting.origin
        return [
            Finding(
                "unscheduled",
                origins[option],
                f"rule {label} fixes {option}, so the recipe's {option} schedule does not drive the {len(names)} "
                f"parameter(s) it sets ({_names(names)}); {option}_mult keeps the schedule",
            )
            for option, names in held.items()
        ]

    def _uniform(
        self, rule: CompiledRule, path: str, label: str, matched: list[tuple[ParamReport, RuleHit]]
    ) -> list[Finding]:
        info_of = {info.name: info for info in self.infos}
        outcomes = [rule.matcher(info_of[report.name]) for report, _ in matched]
        dynamic = [dict(o) for o in outcomes if isinstance(o, Mapping)]
        if len(matched) < 2 or len(dynamic) != len(matched) or any(d != dynamic[0] for d in dynamic):
            return []
        values = ", ".join(f"{k}={v!r}" for k, v in dynamic[0].items())
        message = (
            f"rule {label} gives all {len(matched)} parameters it matches the same "
            f"{values}: the model's names do not follow what the rule expects"
        )
        return [Finding("uniform", path, message)]

    def _decay(self) -> list[Finding]:
        decoupled = self.built.recipe.optimizer.name.lower() in DECOUPLED_DECAY
        info_of = {info.name: info for info in self.infos}
        norms, flat = [], []
        for report in self.reports:
            decay = report.start.get("weight_decay")
            decays = isinstance(decay, int | float) and (decay > 0 or bool(report.end.get("weight_decay")))
            if "weight_decay" in report.settings or not decays:
                continue
            if decoupled and isinstance(info_of[report.name].module, NORM_TYPES):
                norms.append(report.name)
            elif len(report.shape) <= 1:
                flat.append(report.name)
        found = []
        if norms:
            message = (
                f"{len(norms)} norm-layer parameter(s) get the optimizer's weight decay (no rule sets it) under "
                f"{self.built.recipe.optimizer.name}: {_names(norms)}; add a rule such as "
                "{kind: norm, set: {weight_decay: 0}}"
            )
            found.append(Finding("decay-norm", self.rename("optimizer.weight_decay"), message))
        if flat:
            message = (
                f"{len(flat)} 1-D parameter(s) (biases, scales) get the optimizer's weight decay (no rule sets it): "
                f"{_names(flat)}; add a rule such as {{kind: ndim, max: 1, set: {{weight_decay: 0}}}}"
            )
            found.append(Finding("decay-1d", self.rename("optimizer.weight_decay"), message))
        return found

    def _frozen(self) -> list[Finding]:
        if not isinstance(self.model, nn.Module):
            return []
        frozen = [name for name, p in self.model.named_parameters() if not p.requires_grad]
        if not frozen:
            return []
        message = f"{len(frozen)} parameters are frozen (requires_grad=False) and in no group: {_names(frozen)}"
        return [Finding("frozen", "model", message)]

    def _shared(self) -> list[Finding]:
        if not isinstance(self.model, nn.Module):
            return []
        aliases: dict[int, list[tuple[str, str, nn.Module]]] = {}
        for module_name, module in self.model.named_modules(remove_duplicate=False):
            for leaf, param in module.named_parameters(recurse=False):
                name = f"{module_name}.{leaf}" if module_name else leaf
                if param.requires_grad and name not in {n for n, _, _ in aliases.get(id(param), [])}:
                    aliases.setdefault(id(param), []).append((name, module_name, module))
        found = []
        for names in aliases.values():
            if len(names) > 1:
                found.append(self._shared_finding(names))
        return found

    def _shared_finding(self, names: list[tuple[str, str, nn.Module]]) -> Finding:
        primary, *others = names
        param = self.model.get_parameter(primary[0])
        matched = {
            i
            for i, rule in enumerate(self.compiled)
            if rule.matcher(ParamInfo(primary[0], param, primary[2], primary[1], self.model))
        }
        missed = []
        for name, module_name, module in others:
            alias = ParamInfo(name, param, module, module_name, self.model)
            missed += [
                self.rename(rule.path)
                for i, rule in enumerate(self.compiled)
                if i not in matched and rule.matcher(alias)
            ]
        message = (
            f"parameter {primary[0]} is shared with {', '.join(n for n, _, _ in others)} (one tensor, one group, "
            f"grouped by the first name)"
        )
        if missed:
            message += f"; {', '.join(sorted(set(missed)))} match only the other name and do not apply to it"
        return Finding("shared", "model", message)
