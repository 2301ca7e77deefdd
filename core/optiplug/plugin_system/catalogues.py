"""Named catalogues (optimizers, schedules, rules, scaling rules, wrappers, dialects).

The registry asks every plugin's hooks once, plugin by plugin, so a hook that raises
is blamed on its plugin (which is then marked failed) and the rest still load. Two
plugins providing one name is a clash: the registry still fills (``optiplug plugins``
lists every clash at once, :meth:`Registry.clashes`), and only a lookup of that name
fails, with a :class:`~optiplug.PluginError` naming both distributions and the
``OPTIPLUG_DISABLE_PLUGINS`` value that keeps one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import attrs

from optiplug.errors import ConfigError, PluginError, closest
from optiplug.plugin_system.manager import (
    DISABLE_ENV,
    OptiplugPluginManager,
    PluginRecord,
    blocked_from_env,
    short_error,
)
from optiplug.plugin_system.records import (
    RECORD_TYPES,
    DialectSpec,
    OptimizerSpec,
    RecordKind,
    RuleSpec,
    ScalingRule,
    ScheduleSpec,
    WrapperSpec,
)

T = TypeVar("T")


@attrs.frozen
class Provided(Generic[T]):
    """A record together with the plugin and distribution that provided it."""

    record: T
    plugin: str
    distribution: str


class ClashError(ConfigError, PluginError):
    """A config uses a name several plugins provide: both a ConfigError (at the config path) and a PluginError."""


@attrs.frozen
class Clash:
    """One name provided by several plugins: using it fails until all but one are blocked."""

    kind: str
    name: str
    providers: tuple[Provided[Any], ...]

    def message(self) -> str:
        """What is wrong and the ``OPTIPLUG_DISABLE_PLUGINS`` values that resolve it, one per provider kept."""
        times = "twice" if len(self.providers) == 2 else f"{len(self.providers)} times"
        by = " and ".join(f"by plugin {p.plugin!r} ({p.distribution})" for p in self.providers)
        already = sorted(blocked_from_env())
        keeps = []
        for kept in self.providers:
            others = [p.plugin for p in self.providers if p.plugin != kept.plugin]
            keeps.append(f"{DISABLE_ENV}={','.join([*already, *others])} keeps plugin {kept.plugin!r}")
        return f"{self.kind} {self.name!r} is provided {times}: {by}; to use it, block all but one: " + ", ".join(keeps)


class Catalogue(Generic[T]):
    """Records of one kind by name; lookups fail with a ConfigError that suggests names."""

    def __init__(self, kind: str, *, fold_case: bool = False, broken: Callable[[], list[PluginRecord]] = list):
        self.kind = kind
        self._fold = fold_case
        self._entries: dict[str, Provided[T]] = {}
        self._clashes: dict[str, Clash] = {}
        self._broken = broken

    def _key(self, name: str) -> str:
        return name.lower() if self._fold else name

    def add(self, name: str, item: Provided[T], aliases: tuple[str, ...] = ()) -> None:
        """Add ``item`` under ``name`` (and its aliases); a name taken by another plugin becomes a clash."""
        for key in (name, *aliases):
            folded = self._key(key)
            old = self._entries.get(folded)
            if old is not None and old.plugin != item.plugin:
                clash = self._clashes.get(folded) or Clash(self.kind, key, (old,))
                kept = tuple(p for p in clash.providers if p.plugin != item.plugin)
                self._clashes[folded] = attrs.evolve(clash, providers=(*kept, item))
                continue
            self._entries[folded] = item

    def get(self, name: object, path: str = "") -> T:
        """The record named ``name``, or a ConfigError at ``path`` listing the known names."""
        return self.provided(name, path).record

    def provided(self, name: object, path: str = "") -> Provided[T]:
        """Like :meth:`get`, with the provider."""
        if not isinstance(name, str):
            raise ConfigError(f"expected the name of a {self.kind} (a string), got {name!r}", path)
        found = self._entries.get(self._key(name))
        if found is None:
            raise ConfigError(self._unknown(name), path)
        clash = self._clashes.get(self._key(name))
        if clash is not None:
            raise ClashError(clash.message(), path)
        return found

    def clashes(self) -> list[Clash]:
        """The names several plugins provide, by name."""
        return sorted(self._clashes.values(), key=lambda c: self._key(c.name))

    def _unknown(self, name: str) -> str:
        known = self.names()
        folded = {self._key(k): k for k in known}
        match = closest(self._key(name), folded)
        hint = f" (did you mean {folded[match]!r}?)" if match else ""
        message = f"unknown {self.kind} {name!r}{hint}; known: {', '.join(known) or 'none'}"
        broken = self._broken()
        if broken:
            message += "; " + "; ".join(
                f"plugin {b.name!r} ({b.distribution}) failed to load: {b.error}" for b in broken
            )
        return message

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def names(self) -> list[str]:
        """The canonical names (no aliases), sorted."""
        return sorted({str(getattr(p.record, "name", "")) for p in self._entries.values()})

    def __iter__(self) -> Iterator[Provided[T]]:
        seen: set[int] = set()
        for item in self._entries.values():
            if id(item) not in seen:
                seen.add(id(item))
                yield item


class Registry:
    """Every catalogue, filled from one plugin manager's hooks.

    One catalogue per record type (:data:`~optiplug.plugin_system.records.RECORD_TYPES`),
    at the attribute its :class:`~optiplug.plugin_system.records.RecordKind` names.
    ``derived`` holds objects made once per registry from its contents (the recipe
    converter), so they are dropped with it.
    """

    optimizers: Catalogue[OptimizerSpec]
    schedules: Catalogue[ScheduleSpec]
    rules: Catalogue[RuleSpec]
    scaling: Catalogue[ScalingRule]
    wrappers: Catalogue[WrapperSpec]
    dialects: Catalogue[DialectSpec]

    def __init__(self, pm: OptiplugPluginManager) -> None:
        self.plugin_manager = pm
        self.derived: dict[str, Any] = {}
        for record_type in RECORD_TYPES:
            kind: RecordKind = record_type.record_kind  # type: ignore[attr-defined]
            setattr(self, kind.catalogue, Catalogue(kind.label, fold_case=kind.fold_case, broken=pm.failed))
        self._fill()

    def catalogues(self) -> list[tuple[RecordKind, Catalogue[Any]]]:
        """Each record type's kind and its catalogue, in the order of ``RECORD_TYPES``."""
        kinds = [record_type.record_kind for record_type in RECORD_TYPES]  # type: ignore[attr-defined]
        return [(kind, getattr(self, kind.catalogue)) for kind in kinds]

    def _fill(self) -> None:
        pm = self.plugin_manager
        gathered: dict[str, list[tuple[Catalogue[Any], Any]]] = {}
        failed: set[str] = set()
        for record_type in RECORD_TYPES:
            kind: RecordKind = record_type.record_kind  # type: ignore[attr-defined]
            catalogue = getattr(self, kind.catalogue)
            for impl in getattr(pm.hook, kind.hook).get_hookimpls():
                if impl.plugin_name in failed:
                    continue
                try:
                    records = list(impl.function() or ())
                    for record in records:
                        if not isinstance(record, record_type):
                            raise TypeError(f"{kind.hook} returned {record!r}, expected {record_type.__name__} records")
                except Exception as exc:  # noqa: BLE001 - a hook that raises marks its plugin failed
                    failed.add(impl.plugin_name)
                    old = pm.records[impl.plugin_name]
                    pm.record(attrs.evolve(old, status="failed", error=f"{kind.hook}() raised {short_error(exc)}"))
                    continue
                gathered.setdefault(impl.plugin_name, []).extend((catalogue, r) for r in records)
        for plugin_name, items in gathered.items():
            if plugin_name in failed:
                continue
            dist = pm.distribution_of(plugin_name)
            for catalogue, record in items:
                catalogue.add(record.name, Provided(record, plugin_name, dist), getattr(record, "aliases", ()))

    @property
    def plugins(self) -> list[PluginRecord]:
        """Every plugin seen, loaded, blocked or failed."""
        return list(self.plugin_manager.records.values())

    def provided_by(self, plugin_name: str) -> dict[str, list[str]]:
        """What a plugin provides, by catalogue label (for ``optiplug plugins``), clashing names included."""
        out: dict[str, list[str]] = {}
        for kind, catalogue in self.catalogues():
            providers = [*catalogue, *(p for clash in catalogue.clashes() for p in clash.providers)]
            names = sorted({p.record.name for p in providers if p.plugin == plugin_name})
            if names:
                out[kind.label] = names
        return out

    def clashes(self) -> list[Clash]:
        """Every name several plugins provide, catalogue by catalogue."""
        return [clash for _, catalogue in self.catalogues() for clash in catalogue.clashes()]
