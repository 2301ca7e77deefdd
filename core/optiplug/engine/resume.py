"""Resuming a run under another recipe or run length: the policies, and what a state records to tell.

A scheduler state records the run it was saved from: the resolved recipe as plain data
(the resume policy left out), the run's figures in the loader's batches, the values the
groups held for the saved update ``k``, and the update a branch started at. Loading
compares them with the run built now, and the policy (``load_state_dict(state,
resume=...)``, else the recipe's ``run.resume``) says what a difference means:

``strict``   the recipe and run must be the saved ones; a difference is refused, each change named
             (``schedules.lr.value: 0.1 -> 0.2``, ``run.num_epochs: 90 -> 120``).
``rescale``  update ``k`` of a run of ``T`` updates becomes update ``round(k * T' / T)`` of the new
             run of ``T'``: the same fraction of the schedule is done.
``extend``   the count is kept: updates before ``k`` had the saved run's values, from ``k`` on the
             new recipe's, so a value can jump at ``k`` (warned beyond :data:`JUMP_TOLERANCE`).
``branch``   as ``extend``, and every schedule that offers it (``ScheduleSpec.branch``) starts its
             cooldown at ``k``, ending with the new run.

Every policy but ``strict`` accepts changes of the schedules and of the run's length only:
the optimizer's state would overwrite any other option with its saved value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from optiplug.engine.schedules import build_schedule
from optiplug.engine.value_table import ValueTable
from optiplug.errors import ConfigError, StateError, did_you_mean
from optiplug.plugin_system.records import Clock, ScheduleContext
from optiplug.recipe.model import RESUME_POLICIES

if TYPE_CHECKING:
    from optiplug.engine.binding import Binding
    from optiplug.engine.torch_scheduler import OptiplugScheduler
    from optiplug.plugin_system.records import RegistryView

JUMP_TOLERANCE = 0.01
"""A resumed value that differs from the saved one by more than this fraction of the larger is warned about."""

MOVABLE = re.compile(r"^(schedules|run)(\.|\[|$)|^rules\[\d+\]\.schedules(\.|$)")
"""The recipe paths a non-strict policy may see changed: the schedules and the run."""

SHOWN = 8
"""Changes listed in a message before "and N more"."""


@attrs.frozen
class RunRecord:
    """What a state records of the run it was saved from (and ``build`` gives the scheduler).

    ``recipe`` is the resolved recipe as plain data, without ``run.resume``; ``figures``
    the run in the loader's batches (``steps_per_epoch``, ``num_epochs``, ``total_steps``);
    ``policy`` the recipe's ``run.resume``; ``registry`` the one the schedules came from.
    """

    recipe: dict[str, Any]
    figures: dict[str, Any]
    policy: str = "strict"
    registry: RegistryView | None = None


def record_of(data: Mapping[str, Any], batches_per_epoch: int, total_batches: int | None, registry: Any) -> RunRecord:
    """The record of a run: its recipe data (the policy taken out of ``run``) and its figures."""
    plain = json.loads(json.dumps(data, sort_keys=True, default=repr))
    run = dict(plain.get("run", {}))
    policy = run.pop("resume", "strict")
    run.pop("compile", None)  # how the step is run (optiplug_compile), not what the schedules write
    if "run" in plain:
        plain["run"] = run
        if not run:
            del plain["run"]
    return RunRecord(plain, figures_of(batches_per_epoch, total_batches), policy, registry)


def figures_of(batches_per_epoch: int, total_batches: int | None) -> dict[str, Any]:
    """The run's figures as the user gives them: batches per epoch (``len(loader)``), epochs, batches."""
    epochs = None if not total_batches or total_batches % batches_per_epoch else total_batches // batches_per_epoch
    return {"steps_per_epoch": batches_per_epoch, "num_epochs": epochs, "total_steps": total_batches}


def checked_policy(policy: Any, path: str) -> str:
    """``policy`` if it names a policy, else a ConfigError at ``path`` with the accepted names."""
    if policy not in RESUME_POLICIES:
        hint = did_you_mean(str(policy), RESUME_POLICIES)
        raise ConfigError(f"must be one of {', '.join(map(repr, RESUME_POLICIES))}, got {policy!r}{hint}", path)
    return str(policy)


@attrs.frozen
class Saved:
    """A scheduler state, read: the update, the recipe's fingerprint and clock, and the record (newer states)."""

    step: int
    fingerprint: str
    clock: tuple[Any, Any]
    recipe: dict[str, Any] | None = None
    figures: dict[str, Any] | None = None
    values: list[Any] | None = None
    branch_at: int | None = None

    @classmethod
    def of(cls, state: Mapping[str, Any]) -> Saved:
        """Read a state; one without the update or the fingerprint is refused."""
        missing = {"step", "fingerprint"} - set(state)
        if missing:
            raise StateError(f"not an optiplug scheduler state (missing {sorted(missing)})")
        branch = state.get("branch_at")
        return cls(
            int(state["step"]),
            state["fingerprint"],
            (state.get("steps_per_epoch"), state.get("total_steps")),
            state.get("recipe"),
            state.get("run"),
            state.get("values"),
            None if branch is None else int(branch),
        )


@attrs.frozen
class Plan:
    """How a state resumes: the update to set, the bindings, the branch point, the warnings to give."""

    policy: str
    step: int
    bindings: list[Binding]
    branch_at: int | None = None
    warnings: tuple[str, ...] = ()


def plan(scheduler: OptiplugScheduler, state: Mapping[str, Any], policy: str, path: str) -> Plan:
    """What loading ``state`` into ``scheduler`` under ``policy`` does; refusals raise, nothing is changed."""
    saved = Saved.of(state)
    same = saved.fingerprint == scheduler.recipe_fingerprint and saved.clock == _clock(scheduler.clock)
    changes = [] if same else changes_of(saved, scheduler)
    refuse_changes(policy, changes, scheduler.record)
    step, branch_at = resumed_at(policy, saved, scheduler.clock)
    bindings = scheduler.own_bindings
    if branch_at is not None:
        bindings = branched(bindings, branch_at, scheduler.clock, _registry(scheduler), path)
    notes = tuple(f"resume={policy!r}: {c}" for c in changes if c.path == "recipe")
    notes += () if policy == "strict" else jumps_at(saved, bindings, step, scheduler, policy)
    return Plan(policy, step, bindings, branch_at, notes)


def refuse_changes(policy: str, changes: Sequence[Change], record: RunRecord | None) -> None:
    """Refuse any change under ``strict``, and under the other policies what is not a schedule or the run."""
    if policy == "strict" and changes:
        raise StateError(strict_message(changes))
    scheduled = {f"optimizer.{option}" for option in (record.recipe if record else {}).get("schedules", {})}
    moved = [c for c in changes if not c.movable and c.path not in scheduled]
    if moved:
        raise StateError(
            f"resume={policy!r} continues the schedules under a new recipe or run length, but "
            f"{_listed(moved)} {'is' if len(moved) == 1 else 'are'} neither: the optimizer's state would keep "
            "the saved values; resume under the recipe the state was saved from, its schedules and run aside"
        )


def resumed_at(policy: str, saved: Saved, clock: Clock) -> tuple[int, int | None]:
    """The update the resumed run continues from, and the update its cooldown branched at (None: no branch)."""
    if policy == "rescale":
        branch_at = None if saved.branch_at is None else rescaled(saved.branch_at, saved, clock)
        return rescaled(saved.step, saved, clock), branch_at
    if policy == "branch":
        if saved.branch_at is not None:
            raise StateError(
                f"this run started its cooldown at update {saved.branch_at} already; resume it with "
                "resume='strict', 'rescale' or 'extend'"
            )
        return saved.step, saved.step
    return saved.step, saved.branch_at


def _clock(clock: Clock) -> tuple[Any, Any]:
    return clock.steps_per_epoch, clock.total_steps


def _registry(scheduler: OptiplugScheduler) -> RegistryView:
    record = scheduler.record
    if record is not None and record.registry is not None:
        return record.registry
    from optiplug.plugin_system.host import get_registry

    return get_registry()


def rescaled(step: int, saved: Saved, clock: Clock) -> int:
    """Update ``step`` of the saved run of ``T`` updates on the new run of ``T'``: ``round(step * T' / T)``."""
    before, now = saved.clock[1], clock.total_steps
    if not before or not now:
        which = "the saved run" if not before else "this run"
        raise StateError(
            f"resume='rescale' maps the saved update onto the new run's length, and {which} is open-ended; "
            "give both runs a length, or resume with 'extend'"
        )
    return min(math.floor(step * float(now) / float(before) + 0.5), math.ceil(float(now)))


# -- what changed ----------------------------------------------------------------------------------------------------


@attrs.frozen
class Change:
    """One difference between the saved run and this one: where, and ``saved -> now`` in the user's terms."""

    path: str
    text: str

    @property
    def movable(self) -> bool:
        """Whether a non-strict policy accepts it (schedules, run, the clock; an older state's recipe)."""
        return bool(MOVABLE.match(self.path)) or self.path in ("recipe", "updates per epoch", "updates in the run")

    def __str__(self) -> str:
        return f"{self.path}: {self.text}"


def changes_of(saved: Saved, scheduler: OptiplugScheduler) -> list[Change]:
    """Each difference between the saved run and this one."""
    record = scheduler.record
    changes: list[Change] = []
    if saved.recipe is not None and record is not None:
        changes += differences(saved.recipe, record.recipe)
    elif saved.fingerprint != scheduler.recipe_fingerprint:
        changes.append(
            Change(
                "recipe",
                f"fingerprint {saved.fingerprint} -> {scheduler.recipe_fingerprint} (the state was saved by an older "
                "optiplug and holds no copy of its recipe to tell what changed)",
            )
        )
    if saved.figures is not None and record is not None:
        changes += [c for c in figure_changes(saved.figures, record.figures) if c not in changes]
    if not changes or saved.figures is None:
        changes += clock_changes(saved.clock, _clock(scheduler.clock))
    return changes


def differences(saved: Any, now: Any, path: str = "") -> list[Change]:
    """The leaves where two plain-data recipes differ."""
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        keys = list(saved) + [k for k in now if k not in saved]
        return [c for k in keys for c in differences(saved.get(k, _UNSET), now.get(k, _UNSET), _join(path, k))]
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        pairs = enumerate(zip(saved, now, strict=True))
        return [c for i, (a, b) in pairs for c in differences(a, b, f"{path}[{i}]")]
    return [] if saved == now else [Change(path, f"{_show(saved)} -> {_show(now)}")]


def figure_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change]:
    """The run's figures that differ: batches per epoch, epochs, and the batches when the epochs do not say it."""
    changes = [
        Change(f"run.{key}", f"{_show(saved.get(key))} -> {_show(now.get(key))}")
        for key in ("steps_per_epoch", "num_epochs")
        if saved.get(key) != now.get(key)
    ]
    epochs_unknown = None in (saved.get("num_epochs"), now.get("num_epochs"))
    if saved.get("total_steps") != now.get("total_steps") and (not changes or epochs_unknown):
        changes.append(
            Change("run.total_steps", f"{_show(saved.get('total_steps'))} -> {_show(now.get('total_steps'))}")
        )
    return changes


def clock_changes(saved: tuple[Any, Any], now: tuple[Any, Any]) -> list[Change]:
    """The schedules' clock where it differs, in updates (all an older state records of its run)."""
    names = ("updates per epoch", "updates in the run")
    notes = (" (len(loader) / accumulation.steps)", "")
    return [
        Change(name, f"{_show(a)} -> {_show(b)}{note}")
        for name, note, a, b in zip(names, notes, saved, now, strict=True)
        if a != b
    ]


def strict_message(changes: Sequence[Change]) -> str:
    """Why a strict load refuses, each change named, and how to resume under the new recipe."""
    of_run = all(c.path.startswith(("run.", "updates ")) for c in changes)
    what = "a run of another length" if of_run else "a different recipe"
    return (
        f"the state was saved from {what}: {_listed(changes)}; to continue under this "
        f"{'run' if of_run else 'recipe'}, load it with resume='rescale' or 'extend' "
        "(built.load_state_dict(state, resume=...) or run.resume in the recipe)"
    )


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


_UNSET = _Unset()


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value) if isinstance(value, str) else repr(value)


def _listed(lines: Sequence[Any]) -> str:
    shown = "; ".join(map(str, lines[:SHOWN]))
    return shown + (f"; and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")


# -- branch and jumps ------------------------------------------------------------------------------------------------


def branched(bindings: Sequence[Binding], at: int, clock: Clock, registry: RegistryView, path: str) -> list[Binding]:
    """``bindings`` with every schedule that offers a branch starting its cooldown at update ``at``."""
    require_branch(bindings, registry, path)
    tables: dict[int, tuple[ValueTable, Any]] = {}
    out = []
    for b in bindings:
        spec = _branching_spec(b, registry)
        if spec is None or b.config is None:
            out.append(b)
            continue
        if id(b.table) not in tables:
            context = ScheduleContext(clock=clock, base=b.base, path=b.table.path)
            config = attrs.evolve(b.config, params=spec.branch(b.config.params, at, context))
            schedule = build_schedule(config, clock, registry, base=b.base, path=b.table.path)
            tables[id(b.table)] = ValueTable(schedule, path=b.table.path), config
        table, config = tables[id(b.table)]
        out.append(attrs.evolve(b, table=table, config=config))
    return out


def require_branch(bindings: Sequence[Binding], registry: RegistryView, path: str) -> None:
    """A ConfigError at ``path`` unless one of the schedules ``bindings`` drive offers ``branch``."""
    if any(_branching_spec(b, registry) is not None for b in bindings):
        return
    offering = [n for n in registry.schedules.names() if registry.schedules.get(n).branch is not None]
    names = sorted({b.config.name for b in bindings if b.config is not None})
    raise ConfigError(
        f"'branch' starts a cooldown at the saved update, which none of this recipe's schedules "
        f"({', '.join(names) or 'none'}) offers; schedules that do: {', '.join(offering) or 'none installed'}",
        path,
    )


def check_policy(record: RunRecord, bindings: Sequence[Binding]) -> None:
    """At the build: a recipe whose ``run.resume`` is ``branch`` needs a schedule that offers it."""
    if record.policy == "branch" and record.registry is not None:
        require_branch(bindings, record.registry, "run.resume")


def _branching_spec(binding: Binding, registry: RegistryView) -> Any:
    spec = None if binding.config is None else registry.schedules.get(binding.config.name)
    return None if spec is None or spec.branch is None else spec


def option_name(binding: Binding) -> str:
    """The option a binding drives, as a recipe names it (``beta1`` for ``betas[0]``)."""
    return "beta1" if binding.into_betas else binding.option


def values_now(scheduler: OptiplugScheduler) -> list[list[Any]]:
    """``[group, option, value]`` for every scheduled option: the values of the current update."""
    groups = scheduler.optimizer.param_groups
    out = []
    for b in scheduler.bindings:
        value = groups[b.group]["betas"][0] if b.into_betas else groups[b.group][b.option]
        out.append([b.group, option_name(b), float(value)])
    return out


def jumps_at(
    saved: Saved, bindings: Sequence[Binding], step: int, scheduler: OptiplugScheduler, policy: str
) -> tuple[str, ...]:
    """A warning when a resumed value differs from the saved one by more than :data:`JUMP_TOLERANCE`."""
    if not saved.values:
        return ()
    total = scheduler.clock.total_steps
    at = min(step, int(total)) if total is not None else step
    new = {(b.group, option_name(b)): b.table[at] * b.scale for b in bindings}
    jumps = []
    for group, option, old in saved.values:
        value = new.get((group, option))
        if value is not None and abs(value - old) > JUMP_TOLERANCE * max(abs(value), abs(old)):
            jumps.append(f"group {group} {option} {old:.6g} -> {value:.6g}")
    if not jumps:
        return ()
    return (
        f"resume={policy!r}: the schedule jumps at update {step}, from the saved run's values to this recipe's "
        f"(more than {JUMP_TOLERANCE:.0%}): {_listed(jumps)}",
    )
