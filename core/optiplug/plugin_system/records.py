"""The typed records that plugin hooks return, and the small value types they talk in.

Every hook of :mod:`optiplug.plugin_system.hookspecs` returns an iterable of one of the
record types below. They are frozen attrs classes: a plugin builds them once, the
registry checks them and remembers which distribution provided each. Each record type
declares its hook and its catalogue (:class:`RecordKind`), so the registry, the CLI,
the schema and the docs iterate over :data:`RECORD_TYPES` instead of listing hooks.

This module imports nothing of optiplug above the recipe model: where a record must
name the registry it names the :class:`RegistryView` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import attrs

from optiplug.recipe.model import RunConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from optiplug.recipe.model import Recipe

T_co = TypeVar("T_co", covariant=True)


@attrs.frozen
class RecordKind:
    """Where a record type belongs: its hook, its registry catalogue and how it is named.

    ``catalogue`` is the registry attribute (``registry.optimizers``), ``key`` the name
    used by ``optiplug plugins --json`` and the docs, ``label`` the word in messages
    (``unknown optimizer 'sdg'``); names are matched case-insensitively when
    ``fold_case``.
    """

    hook: str
    catalogue: str
    key: str
    label: str
    fold_case: bool = False


def _tuple_of_str(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _frozenset_of_str(value: Any) -> frozenset[str]:
    return frozenset(value)


class Schedule(Protocol):
    """A hyper-parameter schedule: a pure function from update indices to values.

    ``values`` takes a float64 tensor of update indices (0, 1, ...; composites may pass
    fractional ones) and returns a float64 tensor of the same shape. It must not keep
    state between calls: the same steps always give the same values.
    """

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The schedule's value at each of ``steps``."""
        ...


class MetricState(Protocol):
    """The decisions of a metric-driven schedule (``reduce_on_plateau``), the one kind that is not pure.

    A schedule whose values depend on metrics the user reports exposes one as its
    ``metric_state`` attribute. Its ``values(steps)`` stays a function of the update index
    and of these decisions only (a reduction taken at update k changes the values from k
    on). ``report(metric, update)`` gets what the user reported (a finite float, or a
    mapping of names to finite floats; the state picks its own key from a mapping) and
    the number of updates done; it returns True when the schedule's values changed (the
    scheduler then recomputes them and writes update ``update``'s at once).
    ``state_dict`` / ``load_state_dict`` hold every decision, in plain data, so a run
    resumes exactly. ``describe()`` names it in messages (``"reduce_on_plateau"``). It
    may have ``rebase(step)``: a run resumed at an earlier update than it was saved at
    (``resume="rescale"`` onto a shorter run) moves the decisions taken after ``step`` to it.
    """

    def report(self, metric: float | Mapping[str, float], update: int) -> bool:
        """Take one reported metric after ``update`` updates; whether the values changed."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Every decision taken so far, as plain data."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back the decisions of :meth:`state_dict`."""
        ...

    def describe(self) -> str:
        """The schedule's name, for messages."""
        ...


@attrs.frozen
class Clock:
    """Where a schedule is evaluated: updates per epoch, and the run's length in updates.

    ``total_steps`` is None for open-ended runs (only periodic schedules work there).
    """

    steps_per_epoch: int = attrs.field(validator=attrs.validators.gt(0))
    total_steps: float | None = None

    @property
    def num_epochs(self) -> float | None:
        """The run's length in epochs, or None when open-ended."""
        return None if self.total_steps is None else self.total_steps / self.steps_per_epoch


@attrs.frozen
class ScheduleContext:
    """What a schedule factory gets besides its config.

    ``base`` is the value the param group had before scheduling (the optimizer's value
    times the rules' multiplier); relative schedules (``ScheduleSpec.relative``) compute
    from it, absolute ones ignore it. ``path`` is the config path, for error messages.
    ``build`` builds a nested schedule config (composites and wrappers use it).
    """

    clock: Clock
    base: float = 1.0
    path: str = ""
    build: Callable[[Any, Clock, str], Schedule] | None = None


@attrs.frozen
class OptimizerSpec:
    """An optimizer a plugin provides: ``factory(params, **kwargs)`` returns a torch Optimizer.

    ``name`` is matched case-insensitively, as are ``aliases``. Keyword arguments are
    checked against the factory's signature before it is called. ``group_options`` names
    the param-group keys the optimizer reads besides its arguments (LARS's
    ``lars_exclude``): a rule may set those and the arguments, nothing else.
    """

    record_kind: ClassVar[RecordKind] = RecordKind(
        "optiplug_optimizers", "optimizers", "optimizers", "optimizer", fold_case=True
    )

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    description: str = ""
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    group_options: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)


@attrs.frozen
class ScheduleSpec:
    """A schedule a plugin provides.

    ``config_class`` is an attrs class describing the schedule's options (each field with
    ``metadata={"help": ...}``); ``factory(config, context)`` returns a :class:`Schedule`.
    A ``relative`` schedule computes each group's value from that group's base value
    (``context.base``); an absolute one gives the value itself, which optiplug multiplies
    by the group's rule multiplier (``lr_mult``, ``decay_mult``, ...).

    ``branch(config, at, context)``, when given, returns the config of the same schedule
    with its final phase (the cooldown) starting at update ``at`` of the run in
    ``context.clock``: what ``load_state_dict(state, resume="branch")`` resumes with. A
    schedule without it refuses that policy.
    """

    record_kind: ClassVar[RecordKind] = RecordKind("optiplug_schedules", "schedules", "schedules", "schedule")

    name: str
    config_class: type
    factory: Callable[[Any, ScheduleContext], Schedule]
    description: str = ""
    relative: bool = False
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    branch: Callable[[Any, int, ScheduleContext], Any] | None = None


@attrs.frozen
class ParamInfo:
    """One trainable parameter as the grouping rules see it.

    ``root`` is the whole model (None when parameters were given as a list); rules that
    need the model's structure (e.g. its number of blocks, frozen parameters included)
    read it there.
    """

    name: str
    param: torch.nn.Parameter
    module: nn.Module | None = None
    module_name: str = ""
    root: nn.Module | None = None

    @property
    def leaf_name(self) -> str:
        """The attribute name inside the owning module (``weight``, ``bias``, ...)."""
        return self.name.rsplit(".", 1)[-1]


RuleMatcher = Callable[[ParamInfo], "bool | Mapping[str, Any] | None"]


@attrs.frozen
class RuleSpec:
    """A kind of param-group rule: which parameters a rule of this kind selects.

    ``matcher(config)`` compiles a rule's config (an instance of ``config_class``) once
    and returns a function of :class:`ParamInfo`. That function returns False/None when
    the parameter does not match, True when it does (the rule's ``set`` options apply),
    or a mapping of options to apply (before the rule's own ``set``).
    """

    record_kind: ClassVar[RecordKind] = RecordKind("optiplug_param_rules", "rules", "rule_kinds", "param rule kind")

    name: str
    config_class: type | None
    matcher: Callable[[Any], RuleMatcher]
    description: str = ""


@attrs.frozen
class ScalingContext:
    """What a scaling rule needs to move a schedule to a new peak value.

    ``value`` is the new peak (``base_value * factor``); ``factor`` the batch ratio after
    the scaling method (linear or sqrt); ``base_value`` and ``base_batch_size`` come from
    the recipe; ``batch_size`` is the global batch, ``batch_per_node`` the batch of one
    node and ``num_nodes`` the node count. ``rescale(config, path)`` rescales a nested
    schedule config (composites recurse through it).
    """

    value: float
    factor: float
    base_value: float
    base_batch_size: int
    batch_size: int
    batch_per_node: int
    num_nodes: int
    rescale: Callable[[Any, str], Any]
    path: str = ""


@attrs.frozen
class ScalingRule:
    """How a schedule is rescaled to a new peak lr; ``name`` is the schedule's name.

    ``rescale(config, context)`` takes the whole :class:`~optiplug.ScheduleConfig`
    (name, options, update_interval) and returns the rescaled one, which may be of
    another schedule (a composite whose warmup is removed becomes its one remaining part).
    """

    record_kind: ClassVar[RecordKind] = RecordKind("optiplug_scaling_rules", "scaling", "scaling_rules", "scaling rule")

    name: str
    rescale: Callable[[Any, ScalingContext], Any]
    description: str = ""


@attrs.frozen
class WrapperSpec:
    """An optimizer wrapper (LARC, ...): ``wrap(optimizer, config)`` returns an Optimizer.

    ``group_options`` names the param-group keys the wrapper reads (a rule may set them).
    """

    record_kind: ClassVar[RecordKind] = RecordKind(
        "optiplug_wrappers", "wrappers", "wrappers", "optimizer wrapper", fold_case=True
    )

    name: str
    config_class: type
    wrap: Callable[[torch.optim.Optimizer, Any], torch.optim.Optimizer]
    description: str = ""
    group_options: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)


@attrs.frozen
class DialectContext:
    """What a dialect's translator gets besides the foreign mapping.

    ``run`` holds the run figures given to ``build()`` (fields None where not given;
    ``context.steps_per_epoch`` and the like read them); ``source`` is the file the config
    came from, if any; ``registry`` gives access to every catalogue.
    """

    registry: RegistryView
    run: RunConfig = attrs.field(factory=RunConfig)
    source: str | None = None

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches per epoch given to ``build()``, ``len(loader)`` (None where not given)."""
        return self.run.steps_per_epoch

    @property
    def num_epochs(self) -> int | None:
        """Epochs given to ``build()`` (None where not given)."""
        return self.run.num_epochs

    @property
    def batch_size_per_device(self) -> int | None:
        """Samples per device per step given to ``build()`` (None where not given)."""
        return self.run.batch_size_per_device

    @property
    def world_size(self) -> int | None:
        """Devices given to ``build()`` (None where not given)."""
        return self.run.world_size


@attrs.frozen
class DialectSpec:
    """A foreign config format (VISSL, MMCV, ...).

    ``detect(mapping)`` says whether a mapping is written in it; ``translate(mapping,
    context)`` turns it into a canonical :class:`~optiplug.Recipe`. A dialect only
    translates: ``build()`` checks the recipe once, and renames the paths of its errors
    with ``paths`` (recipe path prefix -> the dialect's own key, the longest prefix
    wins), so a user reads ``lr_config.gamma`` rather than ``schedules.lr.gamma``.

    ``tolerates`` names checks of :data:`TOLERABLE_CHECKS` the foreign framework does not
    make: where a config breaks one, ``build()`` builds what the framework would and
    warns (an :class:`~optiplug.OptiplugWarning` naming the key) instead of refusing.

    ``write``, where given, turns a canonical recipe back into a config of the dialect
    (``optiplug convert --to <dialect>``).

    >>> DialectSpec("mmcv", detect, translate, paths={"schedules.lr": "lr_config"}, tolerates={"group_options"})
    """

    record_kind: ClassVar[RecordKind] = RecordKind("optiplug_dialects", "dialects", "dialects", "config dialect")

    name: str
    detect: Callable[[Mapping[str, Any]], bool]
    translate: Callable[[Mapping[str, Any], DialectContext], Recipe]
    description: str = ""
    priority: int = 0
    paths: Mapping[str, str] = attrs.field(factory=dict)
    tolerates: frozenset[str] = attrs.field(factory=frozenset, converter=_frozenset_of_str)
    near_miss: Callable[[Mapping[str, Any], str | None], tuple[str, str] | None] | None = None
    """When no dialect detected a config: ``near_miss(mapping, source)`` returns ``(message, path)``
    if the config is nearly written in this dialect (``OPTIMISER:``, ``typ=``), so the user reads
    the problem in the dialect's terms; never raises."""
    write: Callable[[Recipe, DialectContext], Mapping[str, Any]] | None = None
    """The way back, where the dialect has one: ``write(recipe, context)`` is ``recipe`` as a config of this
    dialect (its top-level keys) for the run figures in ``context.run``; a ConfigError naming the recipe
    path where the dialect cannot express the recipe with the same values. None: read only."""

    @tolerates.validator
    def _known_checks(self, _attribute: Any, value: frozenset[str]) -> None:
        unknown = sorted(value - TOLERABLE_CHECKS.keys())
        if unknown:
            raise ValueError(f"unknown tolerated checks {unknown}; known: {', '.join(TOLERABLE_CHECKS)}")


TOLERABLE_CHECKS: dict[str, str] = {
    "group_options": "a rule sets a key the optimizer does not read (the framework copies it into the group)",
    "option_bounds": "a scheduled or fixed option leaves its range (momentum of 1 or more, ...)",
}
"""The checks a dialect may tolerate (``DialectSpec.tolerates``), each with what it refuses."""


RECORD_TYPES: tuple[type, ...] = (OptimizerSpec, ScheduleSpec, RuleSpec, ScalingRule, WrapperSpec, DialectSpec)
"""Every record type a hook returns, in the order ``optiplug plugins`` lists them."""


class CatalogueView(Protocol[T_co]):
    """Records of one kind by name, as plugins see a registry catalogue."""

    kind: str

    def get(self, name: object, path: str = "") -> T_co:
        """The record named ``name``; an unknown name is a ConfigError at ``path`` listing the known ones."""
        ...

    def names(self) -> list[str]:
        """The canonical names, sorted."""
        ...

    def __contains__(self, name: object) -> bool: ...

    def __iter__(self) -> Iterator[Any]: ...


class RegistryView(Protocol):
    """The registry as a plugin sees it: one catalogue per record type.

    Dialects get it in :class:`DialectContext` to look up optimizers, schedules, rule
    kinds and wrappers by name.
    """

    @property
    def optimizers(self) -> CatalogueView[OptimizerSpec]:
        """Optimizers by name (case-insensitive)."""
        ...

    @property
    def schedules(self) -> CatalogueView[ScheduleSpec]:
        """Schedules by name."""
        ...

    @property
    def rules(self) -> CatalogueView[RuleSpec]:
        """Param rule kinds by name."""
        ...

    @property
    def scaling(self) -> CatalogueView[ScalingRule]:
        """Scaling rules by schedule name."""
        ...

    @property
    def wrappers(self) -> CatalogueView[WrapperSpec]:
        """Optimizer wrappers by name (case-insensitive)."""
        ...

    @property
    def dialects(self) -> CatalogueView[DialectSpec]:
        """Config dialects by name."""
        ...
