"""VISSL ``param_schedulers`` entries -> canonical schedule configs.

What VISSL (through ClassyVision) does to a schedule mapping, reproduced here:

* ``lr`` and ``lr_head`` are merged onto defaults.yaml, so they default to a multistep
  [0.1, 0.01, 0.001] at epochs [30, 60], updated once per epoch. Other entries
  (``weight_decay``, ``weight_decay_head``) get ClassyVision's per-class interval
  (``constant``, ``multistep`` and ``step``: epoch; the rest: step).
* A mapping with ``schedulers`` but no ``name`` is a composite (VISSL would merge
  ``name: multistep`` onto it from its defaults).
* ``num_epochs`` is given to every schedule, and to every part of a composite, as
  ``num_updates``: milestones count epochs, and a multistep part of a composite reads its
  milestones on its own (rescaled) timescale against the run's total epochs.
* The parts of a composite run on the composite's clock: their own ``update_interval``
  does not matter, unless auto-scaling collapses the composite into that part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from optiplug import ConfigError, ScheduleConfig
from optiplug.plugin import Clock, RegistryView, build_schedule, join_path, structure_config, unstructure_config
from optiplug_vissl.config_readers import known_keys, section, text
from optiplug_vissl.defaults import SCHEDULE_KEYS

COMPOSITE = "composite"
CLASS_INTERVALS = {"constant": "epoch", "multistep": "epoch", "step": "epoch"}
DEFAULT_MILESTONES = [30, 60]
NOT_SCALED = "auto_lr_scaling belongs to param_schedulers.lr and lr_head themselves, not to this schedule"
REFUSED = {
    "num_epochs": "VISSL overwrites every schedule's num_epochs with OPTIMIZER.num_epochs; set it there instead",
    "num_updates": "VISSL replaces num_updates by OPTIMIZER.num_epochs (milestones count epochs); remove it",
}


@attrs.frozen
class Written:
    """A VISSL schedule mapping as written, and (for lr / lr_head) merged onto the defaults."""

    user: Mapping[str, Any]
    merged: Mapping[str, Any]
    parts: tuple[Written, ...] = ()


@attrs.frozen
class VisslSchedule:
    """A translated schedule: the canonical config, where it was written, and its VISSL path."""

    config: ScheduleConfig
    written: Written
    path: str


def translate(
    user: Any,
    merged: Any,
    path: str,
    registry: RegistryView,
    num_epochs: int,
    *,
    interval: str | None = None,
    scalable: bool = False,
) -> VisslSchedule:
    """Translate one ``param_schedulers`` entry.

    ``interval`` is the default update interval: ``epoch`` for lr / lr_head, else
    ClassyVision's per-class default.
    """
    flat, written = _flatten(section(user, path), section(merged, path), path, registry, num_epochs, interval, scalable)
    config = structure_config(flat, ScheduleConfig, registry, path)
    return VisslSchedule(config, written, path)


def _flatten(
    user: Mapping[str, Any],
    merged: Mapping[str, Any],
    path: str,
    registry: RegistryView,
    num_epochs: int,
    interval: str | None,
    scalable: bool,
) -> tuple[dict[str, Any], Written]:
    name = _name(user, merged, path)
    spec = registry.schedules.get(name, join_path(path, "name"))
    fields = _fields(spec.config_class)
    allowed = {"name", "update_interval", *fields, *SCHEDULE_KEYS} | ({"auto_lr_scaling"} if scalable else set())
    refused = REFUSED if scalable else REFUSED | {"auto_lr_scaling": NOT_SCALED}
    known_keys(user, allowed, path, refused)
    flat: dict[str, Any] = {"name": spec.name, "update_interval": _interval(merged, spec.name, interval, path)}
    parts: tuple[Written, ...] = ()
    for field in fields:
        if field == "num_updates":
            flat[field] = num_epochs
        elif field == "schedulers" and spec.name == COMPOSITE:
            flat[field], parts = _parts(merged.get(field, []), join_path(path, field), registry, num_epochs)
        elif field in merged:
            flat[field] = merged[field]
    return flat, Written(user, merged, parts)


def _name(user: Mapping[str, Any], merged: Mapping[str, Any], path: str) -> str:
    if "name" in user:
        return text(user["name"], join_path(path, "name"))
    if user.get("schedulers"):
        return COMPOSITE
    if "name" in merged:
        return text(merged["name"], join_path(path, "name"))
    raise ConfigError("a schedule needs a name (cosine, multistep, composite, ...) or a list of schedulers", path)


def _fields(config_class: type | None) -> list[str]:
    if config_class is None or not attrs.has(config_class):
        return []
    return [field.name for field in attrs.fields(config_class)]


def _interval(merged: Mapping[str, Any], name: str, default: str | None, path: str) -> str:
    value = merged.get("update_interval", default or CLASS_INTERVALS.get(name, "step"))
    where = join_path(path, "update_interval")
    return text(value.lower() if isinstance(value, str) else value, where, ("step", "epoch"))


def _parts(
    value: Any, path: str, registry: RegistryView, num_epochs: int
) -> tuple[list[dict[str, Any]], tuple[Written, ...]]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"expected a list of schedules, got {value!r}", path)
    flats, written = [], []
    for i, item in enumerate(value):
        item_path = join_path(path, i)
        item = section(item, item_path)
        flat, part = _flatten(item, item, item_path, registry, num_epochs, None, False)
        flat["update_interval"] = "step"  # a part is evaluated whenever its composite is
        flats.append(flat)
        written.append(part)
    return flats, tuple(written)


def after_collapse(schedule: VisslSchedule, scaled: ScheduleConfig, registry: RegistryView) -> ScheduleConfig:
    """Finish a composite that auto-scaling reduced to one part, as VISSL does.

    VISSL copies the surviving part's keys onto the composite's own mapping: options the
    part does not set come from the composite's mapping (for lr: the defaults, e.g.
    ``milestones: [30, 60]``), and the part's own ``update_interval``, if written, wins.
    """
    if schedule.config.name != COMPOSITE or scaled.name == COMPOSITE:
        return scaled
    survivor = _survivor(schedule)
    if survivor is None:
        return scaled
    outer = schedule.written.merged
    flat = unstructure_config(scaled, registry) | {"update_interval": scaled.update_interval}
    for field in _fields(type(scaled.params)):
        if field not in survivor.user and field in outer and field != "num_updates":
            flat[field] = outer[field]
    if "update_interval" in survivor.user:
        flat["update_interval"] = _interval(survivor.user, scaled.name, None, schedule.path)
    return structure_config(flat, ScheduleConfig, registry, schedule.path)


def _survivor(schedule: VisslSchedule) -> Written | None:
    names = [part.name for part in schedule.config.params.schedulers]
    linear = [i for i, name in enumerate(names) if name == "linear"]
    kept = [i for i in range(len(names)) if not linear or i != linear[-1]]
    return schedule.written.parts[kept[0]] if len(kept) == 1 else None


def check_milestones(config: ScheduleConfig, path: str, num_epochs: int) -> None:
    """Multistep milestones count epochs: each must be < num_epochs, which must cover every value (fvcore)."""
    if config.name == COMPOSITE:
        for i, part in enumerate(config.params.schedulers):
            check_milestones(part, join_path(path, "schedulers", i), num_epochs)
        return
    if config.name != "multistep":
        return
    values, milestones = config.params.values, list(config.params.milestones or ())
    if len(values) > num_epochs:
        message = f"{len(values)} values need at least as many epochs, got num_epochs {num_epochs}"
        raise ConfigError(message, join_path(path, "values"))
    if not any(m >= num_epochs for m in milestones):
        return
    message = f"milestones {milestones} must each be < num_epochs ({num_epochs}): VISSL counts them in epochs"
    if milestones == DEFAULT_MILESTONES:
        message += (
            "; [30, 60] are VISSL's default milestones, merged into every lr schedule that does not set its own: "
            "write milestones for this run, or raise OPTIMIZER.num_epochs"
        )
    raise ConfigError(message, join_path(path, "milestones"))


def check_builds(config: ScheduleConfig, path: str, registry: RegistryView, num_epochs: int) -> None:
    """Build the schedule once against a run of ``num_epochs`` so that its errors name the VISSL path."""
    # build_schedule annotates the concrete Registry; every registry a plugin is handed is one
    build_schedule(config, Clock(1, float(num_epochs)), registry, path=path)
