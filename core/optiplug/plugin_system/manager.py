"""The plugin manager: finds plugins through the ``optiplug`` entry-point group.

First-party plugins arrive exactly like third-party ones. A plugin that fails to import
is recorded with its entry-point name, distribution and error, and everything else
keeps working. Plugins are blocked by name (pluggy's ``set_blocked``) with the
``OPTIPLUG_DISABLE_PLUGINS`` environment variable (comma separated) or the ``blocked``
argument; a blocked entry point is never imported.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from importlib import metadata
from typing import Any, Literal

import attrs
import pluggy

from optiplug.plugin_system import hookspecs
from optiplug.plugin_system.markers import PROJECT

ENTRY_POINT_GROUP = PROJECT
DISABLE_ENV = "OPTIPLUG_DISABLE_PLUGINS"
GIVEN = "(given to make_plugin_manager)"


@attrs.frozen
class PluginRecord:
    """One plugin as discovered: where it came from and whether it loaded."""

    name: str
    distribution: str
    version: str
    status: Literal["loaded", "blocked", "failed"]
    error: str | None = None


class OptiplugPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers every plugin it saw, loaded or not."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}

    def record(self, record: PluginRecord) -> None:
        """Remember a plugin's discovery outcome under its name."""
        self.records[record.name] = record

    def distribution_of(self, plugin_name: str) -> str:
        """The distribution that provided a registered plugin (``?`` if unknown)."""
        rec = self.records.get(plugin_name)
        return rec.distribution if rec else "?"

    def failed(self) -> list[PluginRecord]:
        """The plugins that failed to import or to register."""
        return [r for r in self.records.values() if r.status == "failed"]


def blocked_from_env() -> set[str]:
    """Plugin names listed in ``OPTIPLUG_DISABLE_PLUGINS``."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def short_error(exc: BaseException) -> str:
    """An exception as one line: its type, message and the place it was raised."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _distribution(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    return (dist.metadata["Name"], dist.version) if dist is not None else ("?", "?")


def _load_entry_point(pm: OptiplugPluginManager, ep: metadata.EntryPoint) -> None:
    dist_name, version = _distribution(ep)
    if pm.is_blocked(ep.name):
        pm.record(PluginRecord(ep.name, dist_name, version, "blocked"))
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
        pm.record(PluginRecord(ep.name, dist_name, version, "failed", short_error(exc)))
        return
    register(pm, plugin, ep.name, dist_name, version)


def register(pm: OptiplugPluginManager, plugin: Any, name: str, distribution: str, version: str = "") -> None:
    """Register ``plugin`` under ``name``, recording a failure instead of raising.

    A second plugin of a name already loaded is recorded as failed, under
    ``name (distribution)``, and the first one stays.
    """
    if name in pm.records and pm.records[name].status == "loaded":
        other = pm.records[name].distribution
        error = (
            f"another plugin named {name!r} is loaded, from {other}; plugin names must differ: "
            f"uninstall {distribution} or {other}"
        )
        pm.record(PluginRecord(f"{name} ({distribution})", distribution, version, "failed", error))
        return
    if pm.is_blocked(name):
        pm.record(PluginRecord(name, distribution, version, "blocked"))
        return
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # noqa: BLE001 - pluggy raises several types for bad plugins
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        pm.record(PluginRecord(name, distribution, version, "failed", short_error(exc)))
        return
    pm.record(PluginRecord(name, distribution, version, "loaded"))


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    blocked: Iterable[str] = (),
    plugins: Iterable[tuple[str, Any] | tuple[str, Any, str]] = (),
) -> OptiplugPluginManager:
    """A new plugin manager.

    It loads the entry points (unless ``load_entrypoints`` is False), then ``plugins``
    given as ``(name, plugin)`` or ``(name, plugin, distribution)``. Plugins named in
    ``blocked`` or in ``OPTIPLUG_DISABLE_PLUGINS`` are recorded as blocked and not
    imported.
    """
    pm = OptiplugPluginManager()
    for name in set(blocked) | blocked_from_env():
        pm.set_blocked(name)
    if load_entrypoints:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            _load_entry_point(pm, ep)
    for name, plugin, *distribution in plugins:
        register(pm, plugin, name, distribution[0] if distribution else GIVEN)
    return pm
