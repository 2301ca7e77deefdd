"""What a user's own code registered by decorator, held as a plugin.

:class:`UserRegistrations` is an ordinary plugin object (hook implementations over two
dictionaries). The :class:`~optiplug.plugin_system.host.PluginHost` owns one and hands
it to its plugin manager under the name ``user``; the decorators that fill it are in
:mod:`optiplug.plugin_system.registration`.
"""

from __future__ import annotations

from collections.abc import Callable

from optiplug.plugin_system.markers import hookimpl
from optiplug.plugin_system.records import OptimizerSpec, ScheduleSpec

USER_PLUGIN = "user"
USER_DISTRIBUTION = "(your code)"


class UserRegistrations:
    """The pseudo-plugin that holds what user code registered, and tells a listener of changes."""

    def __init__(self) -> None:
        self.optimizers: dict[str, OptimizerSpec] = {}
        self.schedules: dict[str, ScheduleSpec] = {}
        self.listeners: list[Callable[[], None]] = []

    def add_optimizer(self, spec: OptimizerSpec) -> None:
        """Register (or replace) an optimizer under its name, case-insensitively."""
        self.optimizers[spec.name.lower()] = spec
        self._changed()

    def add_schedule(self, spec: ScheduleSpec) -> None:
        """Register (or replace) a schedule under its name."""
        self.schedules[spec.name] = spec
        self._changed()

    def copy(self) -> UserRegistrations:
        """A new holder with the same registrations and no listeners (a fresh host for a test)."""
        other = UserRegistrations()
        other.optimizers.update(self.optimizers)
        other.schedules.update(self.schedules)
        return other

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    @hookimpl
    def optiplug_optimizers(self) -> list[OptimizerSpec]:
        """The optimizers registered with ``@optiplug.register_optimizer``."""
        return list(self.optimizers.values())

    @hookimpl
    def optiplug_schedules(self) -> list[ScheduleSpec]:
        """The schedules registered with ``@optiplug.register_schedule``."""
        return list(self.schedules.values())
