"""Which schedule drives which option of which param group, and with what scale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch

from optiplug.engine.grouping import Setting
from optiplug.engine.schedules import build_schedule, is_relative
from optiplug.engine.value_table import ValueTable
from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.records import Clock
from optiplug.recipe.model import ScheduleConfig


@attrs.frozen
class Binding:
    """One scheduled option of one group: where it is written and how it is scaled.

    ``config`` and ``base`` are what its table was built from (a resume that branches rebuilds it).
    """

    group: int
    option: str
    table: ValueTable
    scale: float = 1.0
    into_betas: bool = False
    config: ScheduleConfig | None = None
    base: float = 1.0


class ScheduleBinder:
    """Binds schedules to groups, sharing one value table per distinct schedule.

    An absolute schedule is multiplied by the group's rule multiplier and does not
    touch an option a rule fixed; a relative one computes from the group's own value.
    """

    def __init__(
        self, schedules: Mapping[str, ScheduleConfig], base: Mapping[str, Any], clock: Clock, registry: Registry
    ):
        self.schedules = dict(schedules)
        self.base = base
        self.clock = clock
        self.registry = registry
        self.tables: dict[tuple[str, float | None], ValueTable] = {}

    def bind(
        self,
        index: int,
        group: Mapping[str, Any],
        settings: Mapping[str, Setting],
        overrides: Mapping[str, ScheduleConfig] | None = None,
    ) -> list[Binding]:
        """The bindings of group ``index`` (its rule settings and schedule overrides)."""
        bindings = []
        for option, config in (self.schedules | dict(overrides or {})).items():
            path = join_path("schedules", option)
            target, into_betas = target_of(option, group, path)
            setting = settings.get(option)
            spec = self.registry.schedules.get(config.name, path)
            value = group["betas"][0] if into_betas else group.get(target, self.base.get(target, 1.0))
            group_base = float(value or 0.0)
            schedule = build_schedule(config, self.clock, self.registry, base=group_base, path=path)
            relative = is_relative(schedule, spec)
            key = (repr(config), group_base if relative else None)
            table = self.tables.setdefault(key, ValueTable(schedule, path=path))
            if relative:
                bindings.append(Binding(index, target, table, 1.0, into_betas, config, group_base))
            elif setting is None or setting.scaled:
                scale = float(setting.value) if setting is not None else 1.0
                bindings.append(Binding(index, target, table, scale, into_betas, config, group_base))
        return bindings

    def bind_added(self, index: int, group: dict[str, Any]) -> list[Binding]:
        """Bindings for a group added after the build (``add_param_group``).

        Its values relative to the optimizer's become its multipliers: a group added
        with half the optimizer's lr follows half the lr schedule. The values it was
        added with are kept in the group as ``initial_<option>`` (``initial_lr``, as torch's
        schedulers do), so a group rebuilt from a checkpoint, whose values are the
        scheduled ones, is bound with the same multipliers whatever the loading order.
        """
        settings = {}
        for option in self.schedules:
            target, into_betas = target_of(option, group, join_path("schedules", option))
            current = group["betas"][0] if into_betas else group.get(target)
            if isinstance(current, torch.Tensor):
                current = current.item()  # run.compile: the value, never the tensor the scheduler writes into
            value = group.setdefault(f"initial_{'beta1' if into_betas else target}", current)
            reference = self.base.get("betas", (None,))[0] if into_betas else self.base.get(target)
            if isinstance(value, int | float) and isinstance(reference, int | float) and reference != 0:
                settings[option] = Setting(value / reference, scaled=True)
            elif isinstance(value, int | float):
                settings[option] = Setting(value)
        return self.bind(index, group, settings)


def target_of(option: str, group: Mapping[str, Any], path: str) -> tuple[str, bool]:
    """The group key a schedule of ``option`` writes, and whether it is ``betas[0]``."""
    if option in group and option != "beta1":
        return option, False
    if option in ("momentum", "beta1") and "betas" in group:
        return "betas", True
    options = sorted(k for k in group if k != "params")
    raise ConfigError(f"the optimizer has no option {option!r} to schedule; its options: {', '.join(options)}", path)
