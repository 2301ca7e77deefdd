"""The one owner of plugin state: the user's registrations, the plugin manager, the registry.

A :class:`PluginHost` makes its plugin manager and registry on first use and keeps
them; the process has one current host (:func:`current_host`), and a test makes a
fresh one with :func:`use_host`::

    with use_host(PluginHost(blocked=["mmcv"])):
        optiplug.build(config, model)      # sees no MMCV plugin
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.manager import OptiplugPluginManager, make_plugin_manager
from optiplug.plugin_system.user import USER_DISTRIBUTION, USER_PLUGIN, UserRegistrations


class PluginHost:
    """Plugin state with one owner: made lazily, dropped by :meth:`reset`.

    ``load_entrypoints``, ``blocked`` and ``plugins`` are passed to
    :func:`~optiplug.plugin_system.manager.make_plugin_manager`; ``user`` holds the
    decorator registrations (a new, empty holder by default); ``plugin_manager`` uses
    a ready manager instead of making one (the user's registrations are then not added).
    """

    def __init__(
        self,
        *,
        load_entrypoints: bool = True,
        blocked: Iterable[str] = (),
        plugins: Iterable[tuple[str, Any]] = (),
        user: UserRegistrations | None = None,
        plugin_manager: OptiplugPluginManager | None = None,
    ) -> None:
        self.load_entrypoints = load_entrypoints
        self.blocked = tuple(blocked)
        self.plugins = tuple(plugins)
        self.user = user if user is not None else UserRegistrations()
        self.user.listeners.append(self.registrations_changed)
        self._given_manager = plugin_manager
        self._plugin_manager: OptiplugPluginManager | None = plugin_manager
        self._registry: Registry | None = None

    @property
    def plugin_manager(self) -> OptiplugPluginManager:
        """The plugin manager, discovering the plugins on first use."""
        if self._plugin_manager is None:
            self._plugin_manager = make_plugin_manager(
                load_entrypoints=self.load_entrypoints,
                blocked=self.blocked,
                plugins=[*self.plugins, (USER_PLUGIN, self.user, USER_DISTRIBUTION)],
            )
        return self._plugin_manager

    @property
    def registry(self) -> Registry:
        """The registry over the plugin manager's hooks, filled on first use."""
        if self._registry is None:
            self._registry = Registry(self.plugin_manager)
        return self._registry

    def registrations_changed(self) -> None:
        """Drop the registry so the next lookup sees the user's new registrations."""
        self._registry = None

    def reset(self) -> None:
        """Forget the plugin manager and registry (after installing or removing plugins)."""
        self._plugin_manager = self._given_manager
        self._registry = None


_current = PluginHost()


def current_host() -> PluginHost:
    """The process's plugin host."""
    return _current


@contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the current one inside the block (tests, tools that block plugins)."""
    global _current
    previous, _current = _current, host
    try:
        yield host
    finally:
        _current = previous


def get_registry() -> Registry:
    """The current host's registry."""
    return current_host().registry


def get_plugin_manager() -> OptiplugPluginManager:
    """The current host's plugin manager."""
    return current_host().plugin_manager


def reset() -> None:
    """Forget the current host's plugin manager and registry (after installing plugins)."""
    current_host().reset()
