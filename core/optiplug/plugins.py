"""The plugin manager: finds plugins through the ``optiplug`` entry-point group.

First-party plugins arrive exactly like third-party ones. A plugin that fails to import
is recorded with its entry-point name, distribution and error, and everything else
keeps working. Plugins are blocked by name with the ``OPTIPLUG_DISABLE_PLUGINS``
environment variable (comma separated) or the ``blocked`` argument.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Iterable
from importlib import metadata
from typing import Any, Literal

import attrs
import pluggy

from optiplug import hookspecs
from optiplug.errors import PluginError

ENTRY_POINT_GROUP = "optiplug"
DISABLE_ENV = "OPTIPLUG_DISABLE_PLUGINS"
USER_PLUGIN = "user"

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT)


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
        super().__init__(hookspecs.PROJECT)
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


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _load_entry_point(pm: OptiplugPluginManager, ep: metadata.EntryPoint) -> None:
    dist = ep.dist
    dist_name = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
        pm.record(PluginRecord(ep.name, dist_name, version, "failed", _short_error(exc)))
        return
    register(pm, plugin, ep.name, dist_name, version)


def register(pm: OptiplugPluginManager, plugin: Any, name: str, distribution: str, version: str = "") -> None:
    """Register ``plugin`` under ``name``, recording a failure instead of raising."""
    if name in pm.records and pm.records[name].status == "loaded":
        other = pm.records[name].distribution
        raise PluginError(f"two plugins are named {name!r}: from {other} and from {distribution}")
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # noqa: BLE001 - pluggy raises several types for bad plugins
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        pm.record(PluginRecord(name, distribution, version, "failed", _short_error(exc)))
        return
    pm.record(PluginRecord(name, distribution, version, "loaded"))


def make_plugin_manager(
    *, load_entrypoints: bool = True, blocked: Iterable[str] = (), plugins: Iterable[tuple[str, Any]] = ()
) -> OptiplugPluginManager:
    """A new plugin manager.

    It loads the entry points (unless ``load_entrypoints`` is False), the user's own
    registrations, then ``plugins`` given as ``(name, module)`` pairs.

    Plugins named in ``blocked`` or in ``OPTIPLUG_DISABLE_PLUGINS`` are recorded as
    blocked and not imported.
    """
    from optiplug import user

    pm = OptiplugPluginManager()
    blocked_names = set(blocked) | blocked_from_env()
    if load_entrypoints:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked_names:
                dist = ep.dist
                pm.record(
                    PluginRecord(
                        ep.name, dist.metadata["Name"] if dist else "?", dist.version if dist else "?", "blocked"
                    )
                )
                continue
            _load_entry_point(pm, ep)
    register(pm, user.USER_REGISTRATIONS, USER_PLUGIN, "(your code)")
    for name, plugin in plugins:
        if name not in blocked_names:
            register(pm, plugin, name, "(given to make_plugin_manager)")
    return pm


@functools.cache
def get_plugin_manager() -> OptiplugPluginManager:
    """The process-wide plugin manager, made on first use (tests make their own)."""
    return make_plugin_manager()


def reset() -> None:
    """Forget the cached plugin manager and registry (after installing plugins, in tests)."""
    from optiplug import registry

    get_plugin_manager.cache_clear()
    registry.get_registry.cache_clear()
